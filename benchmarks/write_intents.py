"""Benchmark of the write intents' cost (decision 0012) in the storage of a job's first sync.

For ``--users`` new entities in pages of ``--page-size``, into one target, it times what the
job engine does with the database per page, without any back-end:

* ``settle only``: storing the page's operational data (what a page cost before intents);
* ``with intents``: recording the page's write intents (``intend``: one select and one insert)
  and then storing the operational data, which removes them in the same transaction.

Each variant runs ``--rounds`` times on fresh records; the best round is printed. Run from
the project root (PostgreSQL: the URL's server must let its user create a database; a fresh
one is created and dropped)::

    python benchmarks/write_intents.py --users 5000
    python benchmarks/write_intents.py --users 5000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from provisor.context import Context

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scim_directory import create_database, drop_database  # noqa: E402
from provisor.jobs.ports import Record, Settled  # noqa: E402
from provisor.runtime import Services  # noqa: E402
from provisor.settings import Settings  # noqa: E402
from provisor.storage import migrate  # noqa: E402
from provisor.systems.model import NewSystem  # noqa: E402


def one_sync(
    services: Services, source: str, target: str, users: int, page: int, intents: bool
) -> float:
    """Seconds the storage work of a first sync of ``users`` new entities takes."""
    opdata, chain = services.jobs.operational(Context.system("test")), str(uuid.uuid4())
    ids = [str(uuid.uuid4()) for _ in range(users)]
    started = time.perf_counter()
    for start in range(0, users, page):
        chunk = ids[start : start + page]
        if intents:
            opdata.intend(source, target, "user", chunk, chain)
        saved = [Record(i, f"t-{i}", "0" * 64, False, "1" * 64) for i in chunk]
        done = chunk if intents else []
        opdata.settle([Settled(source, target, "user", saved, [], chain, done)])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--page-size", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", help="PostgreSQL server (default: SQLite)")
    args = parser.parse_args()
    admin, name = args.database_url, None
    with tempfile.TemporaryDirectory(prefix="provisor-intents-bench-") as folder:
        url = None
        if admin:
            name = create_database(admin.replace("+psycopg", ""))
            url = urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))
        services = Services.open(Settings(data_dir=Path(folder), database_url=url))
        try:
            migrate.upgrade(services.db)
            source = services.systems.create(
                Context.administrator("bench"),
                NewSystem.model_validate(
                    {"name": "S", "type": "local-identity-directory", "role": "source"}
                ),
            )
            target = services.systems.create(
                Context.administrator("bench"),
                NewSystem.model_validate(
                    {
                        "name": "T",
                        "type": "csv",
                        "role": "target",
                        "sourceSystemIds": [source.id],
                        "properties": {"csv.user.file": "t.csv"},
                    }
                ),
            )
            database = "PostgreSQL" if url else "SQLite"
            print(f"{args.users:,} new users, pages of {args.page_size:,}, {database}")
            best: dict[bool, float] = {}
            for _ in range(args.rounds):
                for intents in (False, True):
                    seconds = one_sync(
                        services, source.id, target.id, args.users, args.page_size, intents
                    )
                    best[intents] = min(seconds, best.get(intents, seconds))
            for intents, label in ((False, "settle only"), (True, "with intents")):
                per = best[intents] / args.users * 1_000_000
                print(f"  {label:<14} {best[intents]:7.3f} s  ({per:6.2f} ms per 1,000 users)")
            extra = best[True] - best[False]
            print(
                f"  intents cost   {extra:7.3f} s  "
                f"({extra / args.users * 1_000_000:6.2f} ms per 1,000 users)"
            )
        finally:
            services.close()
            if name:
                drop_database(admin.replace("+psycopg", ""), name)


if __name__ == "__main__":
    main()

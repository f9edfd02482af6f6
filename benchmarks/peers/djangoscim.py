"""The django-scim2 peer: its own virtual environment, its database and its gunicorn server.

The Django project is ``benchmarks/peers/django_scim2`` (django-scim2's documented setup: its
app, its URLs under ``/scim/v2/``, a user model made of ``AbstractSCIMUserMixin`` and
``AbstractUser``; SQLite in WAL mode; a bearer token read from the database on every request).
It runs in a virtual environment of its own, created the first time under
``~/.cache/provisor-benchmarks/django-scim2`` (``$XDG_CACHE_HOME`` when set) with the pinned
versions of ``PINS`` from the package registry: nothing is installed in provisor's environment.
gunicorn serves it with sync workers (2 by default), as many Python shops deploy Django.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

PINS = (
    "Django==5.2.19",
    "django-scim2==0.23.0",
    "scim2-filter-parser==0.7.0",
    "gunicorn==27.0.1",
)
PROJECT_DIR = Path(__file__).resolve().parent / "django_scim2"
PREFIX = "/scim/v2"
MARKER = "provisor-benchmark-pins.txt"


def default_venv() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "provisor-benchmarks" / "django-scim2"


def environment_ready(venv: Path | None = None) -> bool:
    """Whether the peer's environment exists with the pinned versions (no network needed)."""
    venv = venv or default_venv()
    marker = venv / MARKER
    return (
        (venv / "bin" / "gunicorn").exists()
        and marker.exists()
        and marker.read_text() == "\n".join(PINS) + "\n"
    )


def ensure_environment(venv: Path | None = None) -> Path:
    """The peer's virtual environment, created and installed from the registry if needed."""
    venv = venv or default_venv()
    if environment_ready(venv):
        return venv
    print(f"  creating the django-scim2 environment in {venv} ({', '.join(PINS)})", flush=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, *PINS], check=True)
    (venv / MARKER).write_text("\n".join(PINS) + "\n")
    return venv


@dataclass
class DjangoServer:
    base_url: str
    auth: str  # the Authorization header value
    journal_mode: str
    synchronous: str
    workers: int
    log: Path


def _manage(venv: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(venv / "bin" / "python"), "manage.py", *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


@contextlib.contextmanager
def django_scim2_server(
    work_dir: Path,
    port: int,
    *,
    venv: Path | None = None,
    workers: int = 2,
    synchronous: str = "FULL",
) -> Iterator[DjangoServer]:
    """A migrated database in ``work_dir``, a bearer token, and gunicorn serving the peer."""
    from benchmarks.scim_directory import server_process, tail

    venv = ensure_environment(venv)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PEER_", "DJANGO_"))},
        "DJANGO_SETTINGS_MODULE": "scimpeer.settings",
        "PEER_DATABASE": str(work_dir / "peer.sqlite3"),
        "PEER_SQLITE_SYNCHRONOUS": synchronous,
        "PEER_NETLOC": f"127.0.0.1:{port}",
        "PEER_SECRET_KEY": secrets.token_hex(16),
    }
    _manage(venv, env, "migrate", "--verbosity", "0")
    token = secrets.token_hex(20)
    pragmas = dict(part.split("=", 1) for part in _manage(venv, env, "bench_token", token).split())
    cmd = [
        str(venv / "bin" / "gunicorn"),
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--bind",
        f"127.0.0.1:{port}",
        "--no-control-socket",
        "--chdir",
        str(PROJECT_DIR),
        "scimpeer.wsgi",
    ]
    log = work_dir / "server.log"
    server = DjangoServer(
        base_url=f"http://127.0.0.1:{port}",
        auth=f"Bearer {token}",
        journal_mode=pragmas.get("journal_mode", "?"),
        synchronous={"0": "OFF", "1": "NORMAL", "2": "FULL", "3": "EXTRA"}.get(
            pragmas.get("synchronous", ""), "?"
        ),
        workers=workers,
        log=log,
    )
    with server_process(cmd, env, log) as proc:
        url = f"{server.base_url}{PREFIX}/ServiceProviderConfig"
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {proc.returncode}:\n{tail(log)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, headers={"Authorization": server.auth}).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"django-scim2 not serving after 60 s:\n{tail(log)}")
            time.sleep(0.2)
        yield server

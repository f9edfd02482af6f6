"""Backing an SQLite installation up while it runs, and restoring it into a stopped one."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from provisor import __version__
from provisor.auth.keys import KEY_FILE, load_master_key
from provisor.connectors.paths import TENANTS_FOLDER
from provisor.errors import ConfigError
from provisor.installation.keys import CHECK, check_value
from provisor.runtime import require_installation
from provisor.settings import RATE_LIMITS_FILE, Settings
from provisor.storage import migrate

MANIFEST = "provisor-backup.json"
DATABASE = "provisor.db"
FORMAT = 1
POSTGRESQL = (
    "The database is PostgreSQL: back it up with PostgreSQL's own tools (pg_dump -Fc, "
    "restore with pg_restore), and keep the master key and the data folder's tenants/ files "
    "beside it; see docs/operations.md, Backup, restore and upgrade."
)


@dataclass(frozen=True, slots=True)
class Backup:
    """What a backup holds (its manifest)."""

    version: str  # the provisor that made it
    revision: str | None  # the database's migration
    created: str
    key: bool  # whether the master key is in it
    files: dict[str, str]  # member name: SHA-256

    def json(self) -> bytes:
        return json.dumps(
            {
                "format": FORMAT,
                "version": self.version,
                "revision": self.revision,
                "created": self.created,
                "key": self.key,
                "files": self.files,
            },
            indent=2,
        ).encode()


def _database(settings: Settings) -> Path:
    if not settings.is_sqlite:
        raise ConfigError(POSTGRESQL)
    return settings.data_dir / DATABASE


def backup(settings: Settings, target: Path, *, include_key: bool = False) -> Backup:
    """Write a backup of the installation to ``target`` (a gzip'd tar, readable only by its
    owner): a consistent copy of the SQLite database taken with SQLite's online backup API
    (the servers keep running and writing), the tenants' files, and the master key only when
    ``include_key``. The initial credentials files are left out."""
    source = _database(settings)
    require_installation(settings)
    if not source.is_file():
        raise ConfigError(f"No database {source.resolve()} to back up.")
    if target.exists():
        raise ConfigError(f"{target} exists: name a new file.")
    key = settings.data_dir / KEY_FILE
    if include_key and settings.secret_key is None and not key.is_file():
        raise ConfigError(f"No key file {key.resolve()} to include.")
    with tempfile.TemporaryDirectory(prefix="provisor-backup-") as scratch:
        copy = Path(scratch) / DATABASE
        _copy_database(source, copy)
        revision = _check_database(copy)
        members: dict[str, bytes | Path] = {DATABASE: copy}
        if include_key:
            members[KEY_FILE] = (
                settings.secret_key.get_secret_value().encode() + b"\n"
                if settings.secret_key is not None
                else key
            )
        tenants = settings.data_dir / TENANTS_FOLDER
        for path in sorted(tenants.rglob("*")) if tenants.is_dir() else []:
            if path.is_file() and not path.is_symlink():
                members[path.relative_to(settings.data_dir).as_posix()] = path
        files = {name: _sha256(content) for name, content in members.items()}
        made = Backup(
            version=__version__,
            revision=revision,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            key=include_key,
            files=files,
        )
        partial = target.with_name(target.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
                _add(tar, MANIFEST, made.json())
                for name, content in members.items():
                    _add(tar, name, content)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    return made


def _copy_database(source: Path, copy: Path) -> None:
    """SQLite's online backup: one read transaction, so a snapshot of one moment, while
    the servers write (WAL: readers and the writer do not wait for each other)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        dest = sqlite3.connect(copy)
        try:
            src.backup(dest)
            dest.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            dest.close()
    finally:
        src.close()


def _check_database(path: Path) -> str | None:
    """The database's migration, after SQLite's integrity check; a ConfigError otherwise."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            if result != ["ok"]:
                raise ConfigError(f"The database copy is damaged: {'; '.join(result[:5])}")
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"The backup's database cannot be read: {exc}") from exc
    return str(row[0]) if row else None


def _sha256(content: bytes | Path) -> str:
    digest = hashlib.sha256()
    if isinstance(content, bytes):
        digest.update(content)
    else:
        with content.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _add(tar: tarfile.TarFile, name: str, content: bytes | Path) -> None:
    info = tarfile.TarInfo(name)
    info.mode = 0o600
    info.mtime = int(datetime.now(UTC).timestamp())
    if isinstance(content, bytes):
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    else:
        info.size = content.stat().st_size
        with content.open("rb") as handle:
            tar.addfile(info, handle)


# -- restore ----------------------------------------------------------------------------------


def _require_same_key(settings: Settings, database: Path) -> None:
    """ConfigError unless the installation's master key is the one the backed-up database
    recorded (its check value; a database from before the check has none): restored under
    another key (one rotated since the backup, say), no node could start."""
    master = load_master_key(
        settings.secret_key.get_secret_value() if settings.secret_key else None,
        settings.data_dir,
    )
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
        try:
            row = conn.execute("SELECT value FROM installation WHERE name = ?", (CHECK,)).fetchone()
        except sqlite3.OperationalError:  # before migration 0019: nothing to compare
            return
    if row is not None and row[0] != check_value(master):
        raise ConfigError(
            "The backup's database was made under another master key than this "
            "installation's (a key rotated since the backup, or another installation's): put "
            "the key of the backup's time in place (the key file kept with the backup, or "
            "PROVISOR_SECRET_KEY), then restore again."
        )


def restore(settings: Settings, source: Path) -> Backup:
    """Replace the installation's database and tenants' files by the backup's (and its
    master key, if it holds one). The installation must be stopped; the backup must be whole
    (every file's SHA-256, SQLite's integrity check) and from a migration this provisor knows
    (the next start applies the later ones). Without a key in the backup, the installation's
    key (its key file or PROVISOR_SECRET_KEY) must be the backed-up installation's."""
    database = _database(settings)
    folder = settings.data_dir
    if not source.is_file():
        raise ConfigError(f"No backup file {source}.")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".provisor-restore-", dir=folder.parent) as scratch:
        staged = Path(scratch)
        made = _unpack(source, staged)
        revision = _check_database(staged / DATABASE)
        if revision != made.revision:
            raise ConfigError("The backup's database is not the one its manifest describes.")
        migrate.require_known(revision)
        if not made.key and settings.secret_key is None and not (folder / KEY_FILE).is_file():
            raise ConfigError(
                f"The backup holds no master key and {folder.resolve() / KEY_FILE} does not "
                "exist: copy the backed-up installation's key file there (or set "
                "PROVISOR_SECRET_KEY to it), then restore again. Without it the stored "
                "credentials cannot be read."
            )
        if not made.key:
            _require_same_key(settings, staged / DATABASE)
        folder.mkdir(mode=0o700, exist_ok=True)
        with _stopped(database):
            for name in (DATABASE + "-wal", DATABASE + "-shm", RATE_LIMITS_FILE):
                (folder / name).unlink(missing_ok=True)
            os.replace(staged / DATABASE, database)
            os.chmod(database, 0o600)
            tenants = folder / TENANTS_FOLDER
            if tenants.exists():
                shutil.rmtree(tenants)
            if (staged / TENANTS_FOLDER).is_dir():
                for sub in [staged / TENANTS_FOLDER, *(staged / TENANTS_FOLDER).rglob("*")]:
                    if sub.is_dir():
                        sub.chmod(0o700)
                os.replace(staged / TENANTS_FOLDER, tenants)
            if made.key and settings.secret_key is None:
                os.replace(staged / KEY_FILE, folder / KEY_FILE)
                os.chmod(folder / KEY_FILE, 0o600)
        for name in (DATABASE + "-wal", DATABASE + "-shm"):  # the replaced database's
            (folder / name).unlink(missing_ok=True)
    return made


def _unpack(source: Path, staged: Path) -> Backup:
    """The backup's files into ``staged``, each checked against the manifest's SHA-256;
    only regular files with plain relative names (no links, no ``..``)."""
    try:
        with tarfile.open(source, mode="r:gz") as tar:
            handle = tar.extractfile(MANIFEST)
            if handle is None:
                raise ConfigError(f"{source} is no provisor backup (no {MANIFEST}).")
            manifest = json.loads(handle.read())
            if manifest.get("format") != FORMAT:
                raise ConfigError(f"{source}: unknown backup format {manifest.get('format')!r}.")
            made = Backup(
                version=str(manifest["version"]),
                revision=manifest["revision"],
                created=str(manifest["created"]),
                key=bool(manifest["key"]),
                files={str(k): str(v) for k, v in manifest["files"].items()},
            )
            names = {m.name for m in tar.getmembers()} - {MANIFEST}
            if names != set(made.files) or DATABASE not in names:
                raise ConfigError(f"{source}: its files are not those its manifest lists.")
            for member in tar.getmembers():
                if member.name == MANIFEST:
                    continue
                path = PurePosixPath(member.name)
                allowed = path.parts[0] == TENANTS_FOLDER or member.name in (DATABASE, KEY_FILE)
                if not member.isfile() or path.is_absolute() or ".." in path.parts or not allowed:
                    raise ConfigError(f"{source}: unexpected member {member.name!r}.")
                target = staged.joinpath(*path.parts)
                target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                content = tar.extractfile(member)
                assert content is not None  # a regular file
                with content, target.open("wb") as out:
                    shutil.copyfileobj(content, out)
                target.chmod(0o600)
                if _sha256(target) != made.files[member.name]:
                    raise ConfigError(f"{source}: {member.name} is damaged (its SHA-256 differs).")
    except (tarfile.TarError, OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{source} is no readable provisor backup: {exc}") from exc
    return made


@contextlib.contextmanager
def _stopped(database: Path) -> Iterator[None]:
    """Hold the database exclusively while it is replaced; a ConfigError when any process
    (a server, a worker, another command) has it open: pooled connections keep a WAL
    database's lock while the process runs."""
    if not database.exists():
        yield
        return
    conn = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        try:
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")
            conn.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError as exc:
            raise ConfigError(
                f"The database {database.resolve()} is in use ({exc}): stop every provisor "
                "server and worker of this installation, then restore again."
            ) from exc
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()

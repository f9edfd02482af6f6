"""File-valued system properties: confined to the data folder and the roots an operator lists.

A relative path is relative to the data folder; an absolute one must lie in the data folder or
in a folder of ``PROVISOR_FILE_ROOTS``. ``..`` is refused, and so is a path whose real
location (symbolic links followed) leaves the allowed folders or names a file of the server
itself (its database, key, initial credentials, TLS files). Messages show a path relative to
its root, never the server's absolute paths.

Each tenant has its own folders: a tenant's roots are ``tenants/<tenant>`` inside the data
folder and inside each root (relative paths are relative to ``<data folder>/tenants/<tenant>``);
the default tenant keeps the whole roots except their ``tenants`` folders. So no tenant reads
or writes another tenant's files.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisor.context import DEFAULT_TENANT, Context
from provisor.errors import ConfigError

TENANTS_FOLDER = "tenants"  # in the data folder and in each root: one folder per tenant


@dataclass(frozen=True, slots=True)
class Located:
    """A file a property names: its real path, and the path messages show."""

    path: Path
    shown: str  # relative to its root


class FileRoots:
    """The folders file-valued properties may name files in, and the files they may not name."""

    def __init__(
        self,
        data_dir: Path,
        extra: Sequence[Path] = (),
        reserved: Iterable[Path | str] = (),
        *,
        excluded: Iterable[Path] = (),
    ) -> None:
        """``excluded``: folders inside the roots that may not be named (other tenants')."""
        given = [Path(os.path.abspath(p)) for p in (data_dir, *extra)]
        self.roots = tuple(dict.fromkeys((p, Path(os.path.realpath(p))) for p in given))
        self.reserved = frozenset(os.path.realpath(p) for p in reserved)
        self.excluded = tuple(os.path.realpath(p) for p in excluded)

    def for_tenant(self, tenant: str) -> FileRoots:
        """The roots of ``tenant``'s systems: its own ``tenants/<tenant>`` folders, or (the
        default tenant) these roots without their ``tenants`` folders."""
        lexical = [p for p, _ in self.roots]
        if tenant == DEFAULT_TENANT:
            folders = [p / TENANTS_FOLDER for p in lexical]
            return FileRoots(lexical[0], lexical[1:], self.reserved, excluded=folders)
        own = [p / TENANTS_FOLDER / tenant for p in lexical]
        return FileRoots(own[0], own[1:], self.reserved)

    def locate(self, key: str, value: str) -> Located:
        """Where ``value`` of property ``key`` leads; ConfigError naming ``key`` when it may
        not go there. Symbolic links are followed as they are now."""
        if not value.strip() or "\x00" in value:
            raise ConfigError(f"{key}: not a file path")
        given = Path(value)
        if ".." in given.parts:
            raise ConfigError(f"{key}: a path may not climb out of its folder with '..'")
        if given.is_absolute():
            found = self._root_of(given)
            if found is None:
                raise ConfigError(
                    f"{key}: an absolute path must lie in the data folder or in a folder of "
                    "PROVISOR_FILE_ROOTS"
                )
            root, relative = found
        else:
            root, relative = self.roots[0][1], given
        shown = relative.as_posix()
        if shown == ".":
            raise ConfigError(f"{key}: names a folder, not a file")
        real = os.path.realpath(root / relative)
        if not any(_within(real, str(r)) for _, r in self.roots):
            raise ConfigError(f"{key}: {shown} is a symbolic link leading out of its folder")
        if real in self.reserved:
            raise ConfigError(f"{key}: {shown} is a file of the server itself")
        if any(_within(real, folder) for folder in self.excluded):
            raise ConfigError(f"{key}: {shown} lies in the folders of other tenants")
        return Located(Path(real), shown)

    def readable(self, key: str, value: str) -> Located:
        """``locate``, and the file must be a regular file that can be read now."""
        located = self.locate(key, value)
        try:
            open_regular(located.path).close()
        except OSError as exc:
            raise ConfigError(
                f"{key}: {located.shown}: cannot open the file: {reason(exc)}"
            ) from None
        return located

    def _root_of(self, path: Path) -> tuple[Path, Path] | None:
        """The real root an absolute path lies in, and the path relative to it."""
        for lexical, real in self.roots:
            for base in (lexical, real):
                if path.is_relative_to(base):
                    return real, path.relative_to(base)
        return None


def file_roots(services: Mapping[str, Any]) -> FileRoots:
    """The roots lent to connectors, or the data folder alone (the working folder without),
    for the tenant of the call they work for (``services["context"]``)."""
    roots = services.get("file_roots")
    if not isinstance(roots, FileRoots):
        roots = FileRoots(Path(services.get("data_dir") or Path.cwd()))
    ctx = services.get("context")
    return roots.for_tenant(ctx.tenant) if isinstance(ctx, Context) else roots


def open_regular(path: Path) -> io.BufferedReader:
    """Open a regular file for reading: never a FIFO, a device or a folder, and never
    through a symbolic link at the last step (OSError otherwise)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def reason(exc: OSError) -> str:
    """Why a file cannot be opened, without its path."""
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if exc.errno == errno.ELOOP:
        return "a symbolic link"
    return exc.strerror or type(exc).__name__


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)

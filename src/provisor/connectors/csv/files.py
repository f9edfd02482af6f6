"""The CSV files on disk: reading one (its header, then its rows), replacing one atomically.

A file is only ever replaced whole, so reads are safe while other processes write. A BOM is
skipped. A file that cannot be opened (or is no regular file: a FIFO, a device, a folder) is
ConnectionFailed; a row with more cells than the header, bytes that are not text in
``csv.encoding`` or a bad header are BackendError naming the line. Messages name a file by
its path relative to its root (see :mod:`provisor.connectors.paths`). Cells written can be
escaped against spreadsheet formula injection (``formula_safe``).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import fcntl
import io
import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeAlias

from provisor.connectors.base import BackendError, ConnectionFailed
from provisor.connectors.csv.columns import ColumnError, Layout
from provisor.connectors.paths import open_regular, reason


@dataclass(frozen=True, slots=True, kw_only=True)
class Format:
    """How the files are read and written (``csv.delimiter``, ``csv.encoding``, ...)."""

    encoding: str  # as configured, for messages
    delimiter: str
    read_encoding: str  # utf-8-sig for utf-8: skips a BOM
    write_encoding: str
    bom: bool  # new files start with a UTF-8 BOM (csv.encoding utf-8-sig)
    ascii: bool  # "\n" and the delimiter are one byte each: rows can be appended as bytes
    separator: str
    escape_formulas: bool  # csv.escape.formulas


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # OWASP's CSV injection list


def formula_safe(cell: str) -> str:
    """A cell a spreadsheet shows as text: one that would start a formula gets a leading '."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


Identity: TypeAlias = tuple[int, int, int, int]  # a file's version: changed when written


def file_identity(stat: os.stat_result) -> Identity:
    """Device, inode, size and modification time: what tells whether the file changed."""
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _unreadable(name: str, exc: OSError) -> ConnectionFailed:
    return ConnectionFailed(f"{name}: cannot open the file: {reason(exc)}")


def _decode_error_line(path: Path, encoding: str) -> int:
    """The line holding the first bytes that are not text in ``encoding``."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    line = 1
    with open(path, "rb") as raw:
        for chunk in raw:
            try:
                line += decoder.decode(chunk).count("\n")
            except UnicodeError:  # UTF-16 without its byte-order mark, too
                return line
    return line  # the file ends inside a character


class Rows:
    """An open CSV file: its header, then its rows with the line each starts on. ``name`` is
    the path messages show."""

    def __init__(self, path: Path, fmt: Format, *, name: str) -> None:
        self.path, self.fmt, self.name = path, fmt, name
        try:
            self._raw = open_regular(path)  # closed by close()
        except OSError as exc:
            raise _unreadable(name, exc) from exc
        try:
            self.identity = file_identity(os.fstat(self._raw.fileno()))
            utf8 = fmt.read_encoding == "utf-8-sig"
            self.bom = utf8 and self._raw.peek(3)[:3] == codecs.BOM_UTF8
            self._text = text = io.TextIOWrapper(self._raw, fmt.read_encoding, newline="")
            try:
                first = text.readline()
                lf = first.endswith("\n") and not first.endswith("\r\n")
                self.terminator = "\n" if lf else "\r\n"
                self._reader = csv.reader(itertools.chain([first], text), delimiter=fmt.delimiter)
                header: list[str] = next(self._reader, [])
            except (UnicodeError, csv.Error) as exc:
                raise self._failure(exc) from None
            if header:
                header[0] = header[0].removeprefix("\ufeff")
            self.header = header
            self._line = self._reader.line_num
        except BaseException:
            self.close()
            raise

    def _failure(self, exc: UnicodeError | csv.Error) -> BackendError:
        if isinstance(exc, UnicodeError):
            line = _decode_error_line(self.path, self.fmt.read_encoding)
            return BackendError(f"{self.name}, line {line}: not {self.fmt.encoding} text")
        line = self._reader.line_num if hasattr(self, "_reader") else 1
        return BackendError(f"{self.name}, line {line}: {exc}")

    def layout(self, *, group: bool) -> Layout:
        try:
            return Layout(self.header, group=group, separator=self.fmt.separator)
        except ColumnError as exc:
            raise BackendError(f"{self.name}, line 1: {exc}") from None

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        width, reader = len(self.header), self._reader
        try:
            for cells in reader:
                start, self._line = self._line + 1, reader.line_num
                if len(cells) > width:
                    raise BackendError(
                        f"{self.name}, line {start}: {len(cells)} cells, "
                        f"but the header names {width} columns"
                    )
                if any(cells):
                    yield start, cells
        except (UnicodeError, csv.Error) as exc:
            raise self._failure(exc) from None

    def close(self) -> None:
        if hasattr(self, "_text"):
            self._text.close()
        self._raw.close()

    def __enter__(self) -> Rows:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def flocked(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created if missing, with its folders) while the
    block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # and the lock with it


def replace(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write a new file through a temporary one: fsync, rename over ``path``, fsync the folder."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temporary, os.stat(path).st_mode & 0o7777)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # not every file system syncs folders
            os.fsync(folder)
    finally:
        os.close(folder)


def copy_bytes(source: BinaryIO, out: BinaryIO) -> int:
    """Copy a whole file to the start of ``out``, in the kernel where it can; its size."""
    size = os.fstat(source.fileno()).st_size
    copied = 0
    try:
        while copied < size:
            step = os.copy_file_range(source.fileno(), out.fileno(), size - copied)
            if not step:
                break
            copied += step
    except OSError:
        if copied:
            raise
    if copied < size:
        source.seek(copied)
        out.seek(copied)
        shutil.copyfileobj(source, out, 1 << 20)
    return size

"""FileRoots: where file-valued properties may lead, links followed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provisor.connectors.paths import FileRoots, open_regular
from provisor.errors import ConfigError


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A data folder, an operator root reached through a link, and a folder outside."""
    data, shared, outside = tmp_path / "data", tmp_path / "shared", tmp_path / "outside"
    for folder in (data, shared, outside):
        folder.mkdir()
    (tmp_path / "shared-link").symlink_to(shared, target_is_directory=True)
    (data / "secret.key").write_text("key")
    return data, shared, outside


def roots_of(data: Path) -> FileRoots:
    shared = data.parent / "shared-link"
    return FileRoots(data, [shared], reserved=[data / "secret.key"])


def test_relative_and_absolute_paths_in_the_roots(layout: tuple[Path, Path, Path]) -> None:
    data, shared, _ = layout
    roots = roots_of(data)
    located = roots.locate("csv.user.file", "exports/users.csv")
    assert located.path == data / "exports" / "users.csv" and located.shown == "exports/users.csv"
    assert roots.locate("k", str(data / "u.csv")).shown == "u.csv"
    for given in (shared / "a.csv", data.parent / "shared-link" / "a.csv"):  # real or as listed
        located = roots.locate("k", str(given))
        assert located.path == shared / "a.csv" and located.shown == "a.csv"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "not a file path"),
        ("a\x00b", "not a file path"),
        ("../x.csv", "'..'"),
        ("sub/../x.csv", "'..'"),
        ("/etc/passwd", "PROVISOR_FILE_ROOTS"),
        (".", "names a folder"),
        ("secret.key", "a file of the server itself"),
    ],
)
def test_refused(layout: tuple[Path, Path, Path], value: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=f"^csv.user.file: .*{problem}") as refused:
        roots_of(layout[0]).locate("csv.user.file", value)
    assert "/etc" not in refused.value.message


def test_links(layout: tuple[Path, Path, Path]) -> None:
    data, shared, outside = layout
    roots = roots_of(data)
    (data / "out.csv").symlink_to(outside / "x.csv")
    (data / "dir").symlink_to(outside, target_is_directory=True)
    (data / "key.csv").symlink_to(data / "secret.key")
    (data / "in.csv").symlink_to(data / "real.csv")
    (data / "other-root.csv").symlink_to(shared / "y.csv")
    for name in ("out.csv", "dir/x.csv"):
        with pytest.raises(ConfigError, match="symbolic link leading out"):
            roots.locate("k", name)
    with pytest.raises(ConfigError, match="a file of the server itself"):
        roots.locate("k", "key.csv")
    assert roots.locate("k", "in.csv").path == data / "real.csv"
    assert roots.locate("k", "other-root.csv").path == shared / "y.csv"


def test_only_regular_files_open(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path, Path("/dev/null")):
        with pytest.raises(OSError, match="not a regular file"):
            open_regular(path)
    (tmp_path / "link").symlink_to(tmp_path / "file")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError):
        open_regular(tmp_path / "link")  # never through a link at the last step
    with open_regular(tmp_path / "file") as handle:
        assert handle.read() == b"x"
    roots = FileRoots(tmp_path)
    with pytest.raises(ConfigError, match=r"^k: fifo: cannot open the file: not a regular file$"):
        roots.readable("k", "fifo")


def test_each_tenant_has_its_own_folders(layout: tuple[Path, Path, Path]) -> None:
    """Issue 17: a tenant's files are in ``tenants/<tenant>`` of the data folder and of each
    root; the default tenant keeps the rest; no tenant names another's files."""
    data, shared, _ = layout
    roots = roots_of(data)
    acme = roots.for_tenant("acme")
    located = acme.locate("csv.user.file", "users.csv")
    assert located.path == data / "tenants" / "acme" / "users.csv"
    assert located.shown == "users.csv", "messages never show the tenant's folder"
    assert acme.locate("k", str(shared / "tenants" / "acme" / "x.csv")).shown == "x.csv"
    for elsewhere in (
        data / "users.csv",
        data / "tenants" / "globex" / "users.csv",
        shared / "users.csv",
    ):
        with pytest.raises(ConfigError, match="must lie in the data folder"):
            acme.locate("k", str(elsewhere))
    with pytest.raises(ConfigError, match="file of the server itself"):
        roots.for_tenant("default").locate("k", "secret.key")
    default = roots.for_tenant("default")
    assert default.locate("k", "users.csv").path == data / "users.csv"
    for theirs in ("tenants/acme/users.csv", str(shared / "tenants" / "acme" / "x.csv")):
        with pytest.raises(ConfigError, match="folders of other tenants"):
            default.locate("k", theirs)

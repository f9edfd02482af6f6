"""Only ``serve`` and ``init`` make a data folder or a master key (``runtime.initialise``);
every other local command needs them (``runtime.require_installation``), and a database in
use never gets a new key."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisor.auth.keys import KEY_FILE
from provisor.errors import ConfigError
from provisor.runtime import initialise, require_installation
from provisor.settings import Settings


def test_a_missing_folder_is_named_with_the_option(tmp_path: Path) -> None:
    missing = Settings(data_dir=tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="--data-dir") as raised:
        require_installation(missing)
    assert str(tmp_path / "nowhere") in raised.value.message
    assert not (tmp_path / "nowhere").exists()
    with pytest.raises(ConfigError, match="no provisor data folder"):
        require_installation(Settings(data_dir=tmp_path))  # a folder without a key
    assert list(tmp_path.iterdir()) == []


def test_initialise_once_then_say_what_exists(settings: Settings) -> None:
    first = initialise(settings)
    assert first.key_created and first.admin_file is not None
    assert first.revision is not None
    require_installation(settings)
    again = initialise(settings)
    assert not again.folder_created and not again.key_created
    assert again.admin_file is None and again.revision_before == again.revision


def test_a_database_in_use_never_gets_a_new_key(settings: Settings) -> None:
    initialise(settings)
    key = settings.data_dir / KEY_FILE
    key.unlink()
    for check in (initialise, require_installation):
        with pytest.raises(ConfigError, match="in use but its master key") as raised:
            check(settings)
        assert str(key) in raised.value.message
    assert not key.exists()


def test_a_new_folder_is_private(tmp_path: Path) -> None:
    setup = initialise(Settings(data_dir=tmp_path / "data"))
    assert setup.folder_created
    assert (tmp_path / "data").stat().st_mode & 0o077 == 0

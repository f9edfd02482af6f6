"""Saved connections to provisor servers (``provisor login``): named profiles in one file of
the user's configuration folder, readable by the user alone (it holds client secrets)."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DEFAULT = "default"
FILE_NAME = "profiles.json"


class ProfileError(Exception):
    """The profiles file cannot be used."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """One server and how to authenticate to it: a client id and secret, or a client
    certificate and its key (PEM files); ``ca_file`` when a private CA issued the server's
    certificate."""

    server: str
    client_id: str | None = None
    client_secret: str | None = None
    cert: str | None = None
    key: str | None = None
    ca_file: str | None = None


def config_dir() -> Path:
    """``$PROVISOR_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/provisor``, else
    ``~/.config/provisor``."""
    explicit = os.environ.get("PROVISOR_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "provisor"


def profiles_file() -> Path:
    return config_dir() / FILE_NAME


def _read() -> dict[str, dict[str, Any]]:
    path = profiles_file()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ProfileError(
            f"{path} is readable by other users and holds secrets: run chmod 600 {path} "
            "(and rotate the secrets in it if others may have read them)."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProfileError(f"{path} cannot be read ({exc}): fix or delete it.") from None
    profiles = data.get("profiles") if isinstance(data, dict) else None
    if not isinstance(profiles, dict):
        raise ProfileError(f"{path} holds no profiles object: fix or delete it.")
    return profiles


def _write(profiles: dict[str, dict[str, Any]]) -> Path:
    """Replace the file atomically, created 0600 in a 0700 folder."""
    folder = config_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / FILE_NAME
    staging = folder / f".{FILE_NAME}.{os.getpid()}"
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"profiles": profiles}, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, path)
    return path


def load(name: str) -> Profile | None:
    """The profile of this name, or None."""
    entry = _read().get(name)
    if entry is None:
        return None
    try:
        return Profile(**entry)
    except TypeError:
        raise ProfileError(f"The profile {name!r} in {profiles_file()} is invalid.") from None


def names() -> list[str]:
    return sorted(_read())


def save(name: str, profile: Profile) -> Path:
    """Add or replace a profile; the file's path."""
    profiles = _read()
    profiles[name] = {k: v for k, v in asdict(profile).items() if v is not None}
    return _write(profiles)


def remove(name: str) -> bool:
    """Forget a profile; whether it existed."""
    profiles = _read()
    if profiles.pop(name, None) is None:
        return False
    _write(profiles)
    return True

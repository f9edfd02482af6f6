"""``provisor keys``: the installation's master key (local: opens the data folder)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from provisor.cli.common import (
    DatabaseURL,
    DataDir,
    Yes,
    confirm_or_yes,
    err,
    fail,
    out,
    settings_from,
)
from provisor.errors import ProvisorError

if TYPE_CHECKING:
    from provisor.installation.keys import Encrypted

app = typer.Typer(
    help="The master key (local: run where the data folder is).", no_args_is_help=True
)


@app.command()
def rotate(
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
    new_key_file: Annotated[
        Path | None,
        typer.Option(
            "--new-key-file",
            help="A file holding the new key (32 characters or more). Needed with "
            "PROVISOR_SECRET_KEY; default: a new random key in <data-dir>/secret.key.new.",
        ),
    ] = None,
    yes: Yes = False,
) -> None:
    """Re-encrypt everything the master key protects (system credentials, certificate and CA
    keys, administrators' second factors, SSO client secrets) under a new master key. Stop
    every server and worker first. Bearer tokens issued before become invalid. Stopped
    half-way, run it again with the same options: it finishes."""
    from provisor import logs
    from provisor.runtime import rotate_master_key

    settings = settings_from(data_dir, database_url)
    logs.configure("warning")
    confirm_or_yes(yes, "Re-encrypt the installation's secrets under a new master key?")

    def progress(column: Encrypted, done: int) -> None:
        err.print(f"{column.name}: {done} re-encrypted", highlight=False)

    try:
        rotation = rotate_master_key(settings, new_key_file, progress=progress)
    except ProvisorError as exc:
        fail(exc.message)
    total = sum(rotation.counts.values())
    out.print(f"Re-encrypted {total} value(s) under the new master key.", highlight=False)
    for name, count in rotation.counts.items():
        out.print(f"  {name}: {count}", highlight=False)
    if rotation.key_file is not None:
        out.print(
            f"The new key is in {rotation.key_file.resolve()}: copy it to every node (and keep "
            "the old one with the backups made before now).",
            highlight=False,
            soft_wrap=True,
        )
    else:
        out.print(
            f"Set PROVISOR_SECRET_KEY to the key in {new_key_file} on every node before "
            "starting them: the old key is refused from now on.",
            highlight=False,
            soft_wrap=True,
        )
    out.print("Bearer tokens issued before are invalid: callers ask for new ones.", highlight=False)

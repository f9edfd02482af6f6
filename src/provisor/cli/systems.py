"""``provisor systems``: the systems of the admin API, for scripts and terminals.

Human tables by default, ``--json`` for scripts (the admin API's JSON). Errors print one
readable line and exit 1 (2 for an invalid file or transformation).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table

from provisor.cli.common import (
    AsJSON,
    DatabaseURL,
    DataDir,
    fail,
    open_services,
    operator_context,
    out,
    print_json,
    settings_from,
)
from provisor.connectors.base import Role
from provisor.errors import InvalidTransformationError
from provisor.systems import present
from provisor.systems.exchange import export_system, identity_management_csv, import_system
from provisor.systems.model import NewSystem, System, SystemChanges

app = typer.Typer(help="Systems: sources, targets and proxies.", no_args_is_help=True)
transformation_app = typer.Typer(
    help="A system's transformations and their history.", no_args_is_help=True
)
app.add_typer(transformation_app, name="transformation")

SystemArg = Annotated[str, typer.Argument(help="System id or name.")]
IfMatch = Annotated[
    int | None,
    typer.Option(
        "--if-match",
        help='The version read before (the API\'s ETag W/"<version>"): fail if it changed.',
    ),
]
EXIT_INVALID = 2


def _read_json(path: str, what: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"Cannot read the {what} {path}: {exc.strerror or exc}", EXIT_INVALID)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"The {what} {path} is not valid JSON: {exc}", EXIT_INVALID)


def _invalid(exc: ValidationError, what: str) -> None:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or what}: {e['msg']}" for e in exc.errors()
    )
    fail(f"Invalid {what}: {problems}", EXIT_INVALID)


def _show(system: System, as_json: bool) -> None:
    if as_json:
        print_json(present.system(system))
        return
    out.print(f"[bold]{system.name}[/]  {system.id}", highlight=False)
    rows = [
        ("type", f"{system.type.name} ({system.type.id})"),
        ("role", system.role.value),
        ("enabled", "yes" if system.enabled else "no"),
        ("description", system.description or "-"),
        ("connector version", system.connector_version or "-"),
        (
            "transformations",
            ", ".join(f"{k} v{v}" for k, v in system.transformations.items()) or "-",
        ),
        ("last modified", system.last_modified),
    ]
    if system.role is Role.TARGET:
        rows.append(("source systems", ", ".join(system.source_system_ids) or "-"))
    for label, value in rows:
        out.print(f"  {label:<18} {value}", highlight=False)
    if system.properties:
        out.print("  properties:")
        for key, value in sorted(system.properties.items()):
            out.print(f"    {key} = {value}", highlight=False)
    for problem in system.problems:
        out.print(f"  [yellow]problem:[/] {problem}", highlight=False)


def _pairs(values: list[str] | None) -> dict[str, str]:
    pairs = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--set takes KEY=VALUE, not {item!r}", EXIT_INVALID)
        pairs[key] = value
    return pairs


@app.command("list")
def list_systems(
    role: Annotated[Role | None, typer.Option(help="source, target or proxy.")] = None,
    type: Annotated[str | None, typer.Option(help="Connector type id or name.")] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enabled/--disabled", help="Only enabled or disabled ones.")
    ] = None,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """List the systems, enabled ones first."""
    with open_services(settings_from(data_dir, database_url)) as services:
        found, total = services.systems.listing(
            operator_context(), role=role, type=type, enabled=enabled
        )
    if as_json:
        print_json(present.systems(found, total))
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("name", "role", "type", "enabled", "id"):
        table.add_column(column, no_wrap=column == "id")
    for system in found:
        table.add_row(
            system.name,
            system.role.value,
            system.type.name,
            "yes" if system.enabled else "no",
            system.id,
        )
    out.print(table)
    out.print(f"{total} system(s).")


@app.command()
def show(
    system: SystemArg,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Show a system (credentials masked)."""
    with open_services(settings_from(data_dir, database_url)) as services:
        _show(services.systems.show(operator_context(), system), as_json)


@app.command()
def create(
    file: Annotated[str, typer.Option("--file", "-f", help="The system as JSON ('-': stdin).")],
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Create a system from a JSON file: name, type, role, properties, ..."""
    data = _read_json(file, "system file")
    try:
        new = NewSystem.model_validate(data)
    except ValidationError as exc:
        _invalid(exc, "system file")
    with open_services(settings_from(data_dir, database_url)) as services:
        created = services.systems.create(operator_context(), new)
    if not as_json:
        out.print(f"Created {created.role} system {created.name} ({created.id}).", highlight=False)
    _show(created, as_json)


@app.command()
def update(
    system: SystemArg,
    file: Annotated[
        str | None, typer.Option("--file", "-f", help="Changes as JSON (absent fields stay).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    description: Annotated[str | None, typer.Option(help="A new description.")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Set a property KEY=VALUE (repeat for several)."),
    ] = None,
    unset: Annotated[list[str] | None, typer.Option(help="Remove a property.")] = None,
    credential: Annotated[
        list[str] | None,
        typer.Option(help="Set a credential property KEY=VALUE (stored encrypted)."),
    ] = None,
    if_match: IfMatch = None,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Change a system: from a file and/or with options."""
    data: dict[str, Any] = _read_json(file, "changes file") if file else {}
    if not isinstance(data, dict):
        fail("The changes file holds a JSON object.", EXIT_INVALID)
    if name is not None:
        data["name"] = name
    if description is not None:
        data["description"] = description
    properties: dict[str, str | None] = dict(data.get("properties") or {})
    properties.update(_pairs(set_))
    secrets = _pairs(credential)
    properties.update(secrets)
    properties.update({key: None for key in unset or []})
    if properties:
        data["properties"] = properties
    try:
        changes = SystemChanges.model_validate(data)
    except ValidationError as exc:
        _invalid(exc, "changes")
    with open_services(settings_from(data_dir, database_url)) as services:
        updated = services.systems.update(
            operator_context(), system, changes, credentials=secrets, if_match=if_match
        )
    _show(updated, as_json)


@app.command()
def delete(
    system: SystemArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    if_match: IfMatch = None,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Delete a system and its transformation history (export it first)."""
    ctx = operator_context()
    with open_services(settings_from(data_dir, database_url)) as services:
        found = services.systems.show(ctx, system)
        if not yes and not typer.confirm(f"Delete {found.role} system {found.name}?"):
            fail("Nothing deleted.")
        services.systems.delete(ctx, found.id, if_match=if_match)
    out.print(f"Deleted {found.role} system {found.name} ({found.id}).", highlight=False)


@app.command()
def enable(system: SystemArg, data_dir: DataDir = None, database_url: DatabaseURL = None) -> None:
    """Enable a system."""
    with open_services(settings_from(data_dir, database_url)) as services:
        found = services.systems.set_enabled(operator_context(), system, True)
    out.print(f"Enabled {found.name}.", highlight=False)


@app.command()
def disable(system: SystemArg, data_dir: DataDir = None, database_url: DatabaseURL = None) -> None:
    """Disable a system: jobs leave it alone."""
    with open_services(settings_from(data_dir, database_url)) as services:
        found = services.systems.set_enabled(operator_context(), system, False)
    out.print(f"Disabled {found.name}.", highlight=False)


@app.command()
def export(
    system: SystemArg,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
    ] = None,
    format: Annotated[
        str, typer.Option(help="json, or csv for a proxy (SAP Identity Management repository).")
    ] = "json",
    base_url: Annotated[
        str,
        typer.Option(envvar="PROVISOR_BASE_URL", help="provisor's public URL (csv export)."),
    ] = "http://127.0.0.1:8000",
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Export a system (credentials are never exported)."""
    if format not in ("json", "csv"):
        fail("--format is json or csv", EXIT_INVALID)
    ctx = operator_context()
    with open_services(settings_from(data_dir, database_url)) as services:
        found = services.systems.show(ctx, system)
        if format == "csv":
            text = identity_management_csv(found, base_url)
        else:
            text = json.dumps(export_system(ctx, services.systems, found.id), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text, encoding="utf-8")
    out.print(f"Exported {found.name} to {output}.", highlight=False)


@app.command("import")
def import_(
    file: Annotated[str, typer.Argument(help="An export ('-': stdin).")],
    name: Annotated[
        str | None, typer.Option(help="A new name (the exported one is taken).")
    ] = None,
    role: Annotated[Role | None, typer.Option(help="The role expected (the export's).")] = None,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Create a system from an export; enter its credentials afterwards."""
    data = _read_json(file, "export")
    with open_services(settings_from(data_dir, database_url)) as services:
        try:
            imported = import_system(
                operator_context(), services.systems, data, name=name, role=role
            )
        except ValidationError as exc:
            _invalid(exc, "export")
    if as_json:
        print_json(present.imported(imported.system, imported.warnings))
        return
    out.print(f"Imported {imported.system.name} ({imported.system.id}).", highlight=False)
    for warning in imported.warnings:
        out.print(f"[yellow]warning:[/] {warning}", highlight=False)


@app.command()
def test(
    system: SystemArg,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Test the connection to the system's back-end (exit 1 if it fails)."""
    with open_services(settings_from(data_dir, database_url)) as services:
        result = asyncio.run(services.systems.test_connection(operator_context(), system))
    if as_json:
        print_json(present.connection_test(result, rounded=False))
    elif result.ok:
        out.print(f"[green]OK[/] ({result.seconds:.2f} s): {result.message}", highlight=False)
    else:
        out.print(f"[red]Failed[/] ({result.seconds:.2f} s): {result.message}", highlight=False)
    if not result.ok:
        raise typer.Exit(1)


# -- transformations ------------------------------------------------------------------------------

KindArg = Annotated[str, typer.Argument(help="read or write.")]


@transformation_app.command("show")
def transformation_show(
    system: SystemArg,
    kind: KindArg,
    version: Annotated[int | None, typer.Option(help="An older version.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Print a transformation (the current version unless --version)."""
    with open_services(settings_from(data_dir, database_url)) as services:
        found = services.systems.read_transformation(operator_context(), system, kind, version)
    if output is None:
        sys.stdout.write(found.text.rstrip() + "\n")
    else:
        output.write_text(found.text, encoding="utf-8")


@transformation_app.command("save")
def transformation_save(
    system: SystemArg,
    kind: KindArg,
    file: Annotated[str, typer.Argument(help="The transformation (JSON, '-': stdin).")],
    description: Annotated[str, typer.Option("--description", "-m", help="What changed.")],
    if_match: IfMatch = None,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Check a transformation and save it as the new current version."""
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"Cannot read {file}: {exc.strerror or exc}", EXIT_INVALID)
    with open_services(settings_from(data_dir, database_url)) as services:
        try:
            saved = services.systems.save_transformation(
                operator_context(), system, kind, text, description=description, if_match=if_match
            )
        except InvalidTransformationError as exc:
            out.print(f"Invalid transformation ({len(exc.problems)} problem(s)):")
            for problem in exc.problems:
                out.print(f"  - {problem}", highlight=False)
            raise typer.Exit(EXIT_INVALID) from exc
    out.print(f"Saved {kind} transformation version {saved.version}.", highlight=False)


@transformation_app.command("history")
def transformation_history(
    system: SystemArg,
    kind: KindArg,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """The versions of a transformation, newest first."""
    with open_services(settings_from(data_dir, database_url)) as services:
        versions, total = services.systems.history(operator_context(), system, kind, limit=None)
    if as_json:
        print_json(present.history(versions, total))
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("version", "last modified", "modified by", "description"):
        table.add_column(column)
    for v in versions:
        table.add_row(str(v.version), v.created[:19].replace("T", " "), v.author, v.description)
    out.print(table)


@transformation_app.command("apply")
def transformation_apply(
    system: SystemArg,
    kind: KindArg,
    version: Annotated[int, typer.Argument(help="The version to make current again.")],
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Make an older version current (saved as a new version)."""
    with open_services(settings_from(data_dir, database_url)) as services:
        saved = services.systems.apply_version(operator_context(), system, kind, version)
    out.print(f"Version {version} is current again as version {saved.version}.", highlight=False)


@transformation_app.command("reset")
def transformation_reset(
    system: SystemArg,
    kind: KindArg,
    initial: Annotated[
        bool, typer.Option("--initial", help="Back to version 1 instead of the type's default.")
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Back to the connector type's default transformation (or to version 1)."""
    with open_services(settings_from(data_dir, database_url)) as services:
        to = "initial" if initial else "default"
        saved = services.systems.reset_transformation(operator_context(), system, kind, to=to)
    out.print(f"Reset: version {saved.version} is current.", highlight=False)

"""``provisor systems``: systems, their transformations and the connector types, over the
admin API of a server (``--server``/``PROVISOR_SERVER``, or the profile of ``provisor login``).

Human output by default, ``--json`` for scripts (the admin API's JSON). Errors print one
readable line and exit 1 (2 for an invalid file or transformation).

Credentials never go on the command line: ``--credential KEY`` reads the value from the
environment variable ``PROVISOR_CREDENTIAL_<KEY>`` or asks for it with hidden input on a
terminal; ``--credential-file KEY=FILE`` reads it from a file (``-``: standard input).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Sequence, Set
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from provisor.cli.common import (
    AsJSON,
    Profile,
    Server,
    Yes,
    confirm_or_yes,
    connect,
    fail,
    out,
    print_json,
    print_table,
    say,
)
from provisor.connectors.base import Role
from provisor.remote import Remote
from provisor.remote.session import RemoteError
from provisor.remote.systems import Link, PropertySpec, ResetTo, System

app = typer.Typer(help="Systems: sources, targets and proxies.", no_args_is_help=True)
transformation_app = typer.Typer(
    help="A system's transformations and their history.", no_args_is_help=True
)
app.add_typer(transformation_app, name="transformation")

EXIT_INVALID = 2
SECRETS_HELP = (
    "The value comes from the environment variable PROVISOR_CREDENTIAL_<KEY> (the key in "
    "capitals, other characters than letters and digits as _), else from a hidden prompt on "
    "a terminal; never from the command line."
)


class Kind(StrEnum):
    """The transformations of a system: a source's read, a target's write, a proxy's both."""

    READ = "read"
    WRITE = "write"


class DefaultName(StrEnum):
    """The default transformations of a connector type."""

    READ = "read"
    WRITE = "write"
    PROXY_READ = "proxy-read"
    PROXY_WRITE = "proxy-write"


class ExportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


SystemArg = Annotated[str, typer.Argument(help="System name or id.")]
KindArg = Annotated[Kind, typer.Argument(help="read or write.", case_sensitive=False)]
IfMatch = Annotated[
    int | None,
    typer.Option(
        "--if-match",
        help='The version read before (the system\'s version, its ETag W/"<version>"): '
        "fail if it changed meanwhile.",
    ),
]
Credential = Annotated[
    list[str] | None,
    typer.Option(
        "--credential",
        metavar="KEY",
        help=f"Set a credential property (stored encrypted; repeat for several). {SECRETS_HELP}",
    ),
]
CredentialFile = Annotated[
    list[str] | None,
    typer.Option(
        "--credential-file",
        metavar="KEY=FILE",
        help="Set a credential property to the content of FILE (without its final newline; "
        "'-': standard input).",
    ),
]
Source = Annotated[
    list[str] | None,
    typer.Option(
        "--source",
        metavar="SYSTEM",
        help="Link a source system (name or id) to this target (repeat for several).",
    ),
]


# -- reading input --------------------------------------------------------------------------------


def _read_text(path: str, what: str) -> str:
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"Cannot read the {what} {path}: {exc.strerror or exc}", EXIT_INVALID)


def _read_json(path: str, what: str) -> Any:
    text = _read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"The {what} {path} is not valid JSON: {exc}", EXIT_INVALID)


def _read_object(path: str, what: str) -> dict[str, Any]:
    data = _read_json(path, what)
    if not isinstance(data, dict):
        fail(f"The {what} {path} must hold a JSON object.", EXIT_INVALID)
    return data


def _pairs(values: list[str] | None, option: str, meaning: str = "KEY=VALUE") -> dict[str, str]:
    pairs = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"{option} takes {meaning}, not {item!r}.", EXIT_INVALID)
        pairs[key] = value
    return pairs


def credential_variable(key: str) -> str:
    """The environment variable holding the value of the credential ``key``."""
    return "PROVISOR_CREDENTIAL_" + re.sub(r"[^A-Za-z0-9]", "_", key).upper()


def _credentials(
    keys: list[str] | None, files: list[str] | None, *, stdin_taken: bool = False
) -> dict[str, str]:
    """The credentials of --credential KEY (environment, else prompt) and
    --credential-file KEY=FILE (``stdin_taken``: another option reads standard input)."""
    found: dict[str, str] = {}
    for key in keys or []:
        variable = credential_variable(key.partition("=")[0])
        if "=" in key:
            fail(
                "--credential takes a key, not KEY=VALUE: a secret stays off the command "
                f"line. Set {variable}, use --credential-file KEY=FILE, or enter it when "
                "asked on a terminal.",
                EXIT_INVALID,
            )
        if variable in os.environ:
            found[key] = os.environ[variable]
        elif sys.stdin.isatty():
            found[key] = typer.prompt(key, hide_input=True)
        else:
            fail(
                f"No value for the credential {key}: set {variable}, use --credential-file "
                f"{key}=FILE, or run on a terminal to be asked.",
                EXIT_INVALID,
            )
    paths = _pairs(files, "--credential-file", "KEY=FILE")
    if list(paths.values()).count("-") + stdin_taken > 1:
        fail("Only one option reads standard input ('-').", EXIT_INVALID)
    for key, path in paths.items():
        found[key] = _read_text(path, f"credential file of {key}").removesuffix("\n")
    return found


# -- printing -------------------------------------------------------------------------------------


def _named(links: list[Link]) -> str:
    return ", ".join(f"{link['name']} ({link['id']})" for link in links) or "-"


def _show(system: System, as_json: bool) -> None:
    if as_json:
        print_json(system)
        return
    out.print(
        f"[bold]{escape(system['name'])}[/]  ({system['id']})", highlight=False, soft_wrap=True
    )
    rows = [
        ("type", f"{system['typeName']} ({system['type']})"),
        ("role", system["role"]),
        ("enabled", "yes" if system["enabled"] else "no"),
        ("description", system["description"] or "-"),
        ("connector version", system["connectorVersion"] or "-"),
        (
            "transformations",
            ", ".join(f"{k} v{v}" for k, v in system["transformations"].items()) or "-",
        ),
        ("version", str(system["version"])),
        ("last modified", system["lastModified"]),
    ]
    if "sourceSystems" in system:
        rows.append(("source systems", _named(system["sourceSystems"])))
    if "targetSystems" in system:
        rows.append(("target systems", _named(system["targetSystems"])))
    for label, value in rows:
        say(f"  {label:<18} {value}")
    if system["properties"]:
        out.print("  properties:")
        for key, value in sorted(system["properties"].items()):
            say(f"    {key} = {value}")
    for problem in system["problems"]:
        out.print(f"  [yellow]problem:[/] {escape(problem)}", highlight=False, soft_wrap=True)


def _table(columns: Sequence[str], rows: Iterable[Sequence[str]], whole: Set[str]) -> None:
    """Print a table; the ``whole`` columns (ids, keys) are never cut or wrapped, whatever
    the terminal's width: the others wrap."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    listed = list(rows)
    for i, column in enumerate(columns):
        if column in whole:
            widest = max([len(column), *(len(row[i]) for row in listed)])
            table.add_column(column, no_wrap=True, min_width=widest)
        else:
            table.add_column(column, overflow="fold")
    for row in listed:
        table.add_row(*(Text(cell) for cell in row))
    print_table(table)


# -- systems --------------------------------------------------------------------------------------


@app.command("list")
def list_systems(
    role: Annotated[Role | None, typer.Option(help="Only systems of this role.")] = None,
    type: Annotated[str | None, typer.Option(help="Connector type id or name.")] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enabled/--disabled", help="Only enabled or disabled ones.")
    ] = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """List the systems, enabled ones first."""
    with connect(server, profile) as remote:
        found = remote.systems.all(role=role, type=type, enabled=enabled)
    if as_json:
        print_json({"items": found, "total": len(found)})
        return
    rows = (
        (s["name"], s["role"], s["typeName"], "yes" if s["enabled"] else "no", s["id"])
        for s in found
    )
    _table(("name", "role", "type", "enabled", "id"), rows, {"id"})
    out.print(f"{len(found)} system(s).")


@app.command()
def show(
    system: SystemArg, as_json: AsJSON = False, server: Server = None, profile: Profile = None
) -> None:
    """Show a system (credentials masked) with the systems linked to it by name."""
    with connect(server, profile) as remote:
        _show(remote.systems.show(system), as_json)


def _source_ids(remote: Remote, refs: list[str]) -> list[str]:
    """The ids of the source systems named (by name or id)."""
    ids = []
    for ref in refs:
        found = remote.systems.show(ref)
        if found["role"] != Role.SOURCE:
            fail(f"{found['name']} is a {found['role']} system, not a source.")
        ids.append(found["id"])
    return ids


def _with_credentials(
    data: dict[str, Any], secrets: dict[str, str], stored: Sequence[str] = ()
) -> None:
    """Add credentials to a system's (or its changes') properties and credential keys: those
    given, else the ``stored`` ones, and the new ones."""
    data["properties"] = {**(data.get("properties") or {}), **secrets}
    data["credentialKeys"] = sorted({*(data.get("credentialKeys") or stored), *secrets})


@app.command()
def create(
    file: Annotated[
        str,
        typer.Option(
            "--file",
            "-f",
            help="The system as JSON ('-': standard input): name, type, role, description, "
            "properties, credentialKeys, sourceSystemIds, transformations.",
        ),
    ],
    credential: Credential = None,
    credential_file: CredentialFile = None,
    source: Source = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Create a system from a JSON file (see `provisor systems types` for the properties)."""
    data = _read_object(file, "system file")
    secrets = _credentials(credential, credential_file, stdin_taken=file == "-")
    if secrets:
        _with_credentials(data, secrets)
    with connect(server, profile) as remote:
        if source:
            ids = _source_ids(remote, source)
            data["sourceSystemIds"] = list(dict.fromkeys([*data.get("sourceSystemIds", []), *ids]))
        created = remote.systems.create(data)
    if not as_json:
        say(f"Created {created['role']} system {created['name']} ({created['id']}).")
    _show(created, as_json)


def _linked(remote: Remote, system: System, add: list[str], remove: list[str]) -> list[str]:
    """A target's source ids after linking ``add`` and unlinking ``remove`` (names or ids)."""
    if system["role"] != Role.TARGET:
        fail(f"{system['name']} is a {system['role']} system: only targets have source systems.")
    linked = {link["id"]: link["name"] for link in system.get("sourceSystems", [])}
    ids = list(system.get("sourceSystemIds", []))
    for ref in remove:
        match = [i for i, name in linked.items() if ref == i or ref.casefold() == name.casefold()]
        if not match:
            fail(f"{ref} is not a source system of {system['name']}.")
        ids.remove(match[0])
    return list(dict.fromkeys([*ids, *_source_ids(remote, add)]))


@app.command()
def update(
    system: SystemArg,
    file: Annotated[
        str | None,
        typer.Option("--file", "-f", help="Changes as JSON (absent fields stay; '-': stdin)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    description: Annotated[str | None, typer.Option(help="A new description.")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="KEY=VALUE", help="Set a property (repeat for several)."),
    ] = None,
    unset: Annotated[
        list[str] | None, typer.Option(metavar="KEY", help="Remove a property.")
    ] = None,
    credential: Credential = None,
    credential_file: CredentialFile = None,
    source: Source = None,
    no_source: Annotated[
        list[str] | None,
        typer.Option(
            "--no-source",
            metavar="SYSTEM",
            help="Unlink a source system (name or id) from this target.",
        ),
    ] = None,
    if_match: IfMatch = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Change a system: from a file and/or with options. Changing a URL needs its
    credentials again."""
    data = _read_object(file, "changes file") if file else {}
    if name is not None:
        data["name"] = name
    if description is not None:
        data["description"] = description
    properties: dict[str, str | None] = dict(data.get("properties") or {})
    properties.update(_pairs(set_, "--set"))
    properties.update({key: None for key in unset or []})
    if properties:
        data["properties"] = properties
    secrets = _credentials(credential, credential_file, stdin_taken=file == "-")
    if not data and not secrets and not source and not no_source:
        fail(
            "Nothing to change: give --file, --name, --description, --set, --unset, "
            "--credential, --source or --no-source.",
            EXIT_INVALID,
        )
    with connect(server, profile) as remote:
        if secrets or source or no_source:  # changes of what the system holds: read it first
            current = remote.systems.show(system)
            if secrets:
                _with_credentials(data, secrets, current["credentialKeys"])
            if source or no_source:
                data["sourceSystemIds"] = _linked(remote, current, source or [], no_source or [])
            if if_match is None:  # what was read is what changes
                if_match = current["version"]
        updated = remote.systems.update(system, data, if_match=if_match)
    _show(updated, as_json)


@app.command()
def delete(
    system: SystemArg,
    yes: Yes = False,
    if_match: IfMatch = None,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Delete a system, its transformation history and its certificates (export it
    first). Asks for confirmation unless --yes."""
    with connect(server, profile) as remote:
        found = remote.systems.show(system)
        label = f"{found['role']} system {found['name']} ({found['id']})"
        confirm_or_yes(yes, f"Delete the {label}?")
        remote.systems.delete(found["id"], if_match=if_match)
    say(f"Deleted the {label}.")


@app.command()
def enable(system: SystemArg, server: Server = None, profile: Profile = None) -> None:
    """Enable a system."""
    with connect(server, profile) as remote:
        found = remote.systems.set_enabled(system, True)
    say(f"Enabled {found['name']}.")


@app.command()
def disable(system: SystemArg, server: Server = None, profile: Profile = None) -> None:
    """Disable a system: jobs leave it alone."""
    with connect(server, profile) as remote:
        found = remote.systems.set_enabled(system, False)
    say(f"Disabled {found['name']}.")


@app.command()
def test(
    system: SystemArg, as_json: AsJSON = False, server: Server = None, profile: Profile = None
) -> None:
    """Test the connection to the system's back-end (exit 1 if it fails)."""
    with connect(server, profile) as remote:
        result = remote.systems.test(system)
    if as_json:
        print_json(result)
    else:
        status = "[green]OK[/]" if result["ok"] else "[red]Failed[/]"
        out.print(
            f"{status} ({result['seconds']:.2f} s): {escape(result['message'])}", highlight=False
        )
    if not result["ok"]:
        raise typer.Exit(1)


@app.command()
def export(
    system: SystemArg,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
    ] = None,
    format: Annotated[
        ExportFormat,
        typer.Option(help="json, or csv for a proxy (SAP Identity Management repository)."),
    ] = ExportFormat.JSON,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Export a system (credentials are never exported) to import it elsewhere."""
    with connect(server, profile) as remote:
        if format is ExportFormat.CSV:
            data = remote.systems.export_csv(system)
        else:
            exported = remote.systems.export(system)
            data = (json.dumps(exported, indent=2, ensure_ascii=False) + "\n").encode()
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        output.write_bytes(data)
    except OSError as exc:
        fail(f"Cannot write {output}: {exc.strerror or exc}")
    say(f"Exported {system} to {output}.")


@app.command("import")
def import_(
    file: Annotated[str, typer.Argument(help="An export ('-': standard input).")],
    name: Annotated[
        str | None, typer.Option(help="A new name (when the exported one is taken).")
    ] = None,
    role: Annotated[Role | None, typer.Option(help="The role expected (the export's).")] = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Create a system from an export; enter its credentials afterwards (systems update
    --credential)."""
    data = _read_object(file, "export")
    with connect(server, profile) as remote:
        imported = remote.systems.import_system(data, name=name, role=role)
    if as_json:
        print_json(imported)
        return
    say(f"Imported {imported['name']} ({imported['id']}).")
    for warning in imported["warnings"]:
        out.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)


@app.command()
def types(
    type_name: Annotated[
        str | None, typer.Argument(metavar="TYPE", help="A connector type's id or name.")
    ] = None,
    transformation: Annotated[
        DefaultName | None,
        typer.Option(help="With TYPE: print this default transformation of the type."),
    ] = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """The connector types; with TYPE, its properties (what `systems create` takes)."""
    if transformation is not None and type_name is None:
        fail("--transformation needs a TYPE.", EXIT_INVALID)
    with connect(server, profile) as remote:
        if type_name is None:
            found = remote.systems.connector_types()
        elif transformation is not None:
            print_json(remote.systems.default_transformation(type_name, transformation))
            return
        else:
            kind = remote.systems.connector_type(type_name)
    if type_name is None:
        if as_json:
            print_json({"items": found})
            return
        rows = ((t["id"], t["name"], ", ".join(t["roles"]), t["description"]) for t in found)
        _table(("id", "name", "roles", "description"), rows, {"id"})
        return
    if as_json:
        print_json(kind)
        return
    out.print(
        f"[bold]{escape(kind['name'])}[/] ({kind['id']}): {escape(kind['description'])}",
        highlight=False,
    )
    roles, entities = ", ".join(kind["roles"]), ", ".join(kind["entityTypes"])
    say(f"  roles: {roles}; entity types: {entities}")
    say("  properties:")
    for spec in kind["properties"]:
        say(f"    {spec['key']}  {_property_facts(spec)}")
        say(f"        {spec['description']}")


def _property_facts(spec: PropertySpec) -> str:
    """A property's type, values, default and roles that need it, on one line."""
    allowed = spec.get("allowedValues")
    facts = [spec["type"] + (f" ({' | '.join(allowed)})" if allowed else "")]
    if spec["default"]:
        facts.append(f"default {spec['default']}")
    if spec["requiredFor"]:
        facts.append(f"required for {', '.join(spec['requiredFor'])}")
    return "; ".join(facts)


# -- transformations ------------------------------------------------------------------------------


@transformation_app.command("show")
def transformation_show(
    system: SystemArg,
    kind: KindArg,
    version: Annotated[int | None, typer.Option(help="An older version.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file.")] = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Print a transformation's text (the current version unless --version); --json: with
    its version, author and description."""
    with connect(server, profile) as remote:
        found = remote.systems.transformation(system, kind, version)
    if as_json:
        print_json(found)
    elif output is None:
        sys.stdout.write(found["text"].rstrip() + "\n")
    else:
        output.write_text(found["text"], encoding="utf-8")


@transformation_app.command("save")
def transformation_save(
    system: SystemArg,
    kind: KindArg,
    file: Annotated[str, typer.Argument(help="The transformation (JSON, '-': standard input).")],
    description: Annotated[str, typer.Option("--description", "-m", help="What changed.")],
    if_match: IfMatch = None,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Check a transformation and save it as the new current version (exit 2 listing every
    problem when it is invalid)."""
    text = _read_text(file, "transformation")
    with connect(server, profile) as remote:
        try:
            saved = remote.systems.save_transformation(
                system, kind, text, description=description, if_match=if_match
            )
        except RemoteError as exc:
            problems = (exc.problem or {}).get("problems")
            if exc.status != 400 or not isinstance(problems, list):
                raise
            out.print(f"Invalid transformation ({len(problems)} problem(s)):")
            for problem in problems:
                say(f"  - {problem}")
            raise typer.Exit(EXIT_INVALID) from exc
    say(f"Saved {kind} transformation version {saved['version']}.")


@transformation_app.command("history")
def transformation_history(
    system: SystemArg,
    kind: KindArg,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="The newest versions shown.")] = 20,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """The versions of a transformation, newest first."""
    with connect(server, profile) as remote:
        page = remote.systems.history(system, kind, limit=limit)
    if as_json:
        print_json(page)
        return
    rows = (
        (
            str(v["version"]),
            v["lastModified"][:19].replace("T", " "),
            v["modifiedBy"],
            v["description"],
        )
        for v in page["items"]
    )
    _table(("version", "last modified", "modified by", "description"), rows, {"version"})
    if page["total"] > len(page["items"]):
        out.print(f"The {len(page['items'])} newest of {page['total']} versions (--limit).")


@transformation_app.command("apply")
def transformation_apply(
    system: SystemArg,
    kind: KindArg,
    version: Annotated[int, typer.Argument(help="The version to make current again.")],
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Make an older version current again (saved as a new version)."""
    with connect(server, profile) as remote:
        saved = remote.systems.apply_version(system, kind, version)
    say(f"Version {version} is current again as version {saved['version']}.")


@transformation_app.command("reset")
def transformation_reset(
    system: SystemArg,
    kind: KindArg,
    initial: Annotated[
        bool, typer.Option("--initial", help="Back to version 1 instead of the type's default.")
    ] = False,
    yes: Yes = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Replace the current transformation by the connector type's default (or by version
    1), saved as a new version. Asks for confirmation unless --yes."""
    to: ResetTo = "initial" if initial else "default"
    what = "version 1" if initial else "the connector type's default"
    with connect(server, profile) as remote:
        found = remote.systems.show(system)
        confirm_or_yes(yes, f"Replace the {kind} transformation of {found['name']} by {what}?")
        saved = remote.systems.reset_transformation(found["id"], kind, to)
    say(f"Reset: version {saved['version']} is current.")

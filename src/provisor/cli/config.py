"""``provisor config``: a tenant's configuration as one file, over the admin API: export it,
plan a file against the server (what would change), apply it, and the bundle templates.

The way to promote a tested setup: ``provisor config export -o setup.json`` on the test
server, ``provisor config plan setup.json`` on production to review, ``provisor config apply
setup.json`` to make it so (it shows the plan again and applies exactly that plan: when the
configuration changed in between, the server refuses and nothing is changed). Credentials are
never in the file: enter them afterwards (``provisor systems update NAME --credential KEY``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from provisor.cli.common import (
    AsJSON,
    Profile,
    Server,
    Yes,
    confirm_or_yes,
    connect,
    err,
    fail,
    print_json,
    print_table,
    say,
)
from provisor.remote.configuration import Plan
from provisor.remote.session import RemoteError

app = typer.Typer(
    help="The configuration as one file: export, plan, apply; bundle templates.",
    no_args_is_help=True,
)

EXIT_INVALID = 2
FileArg = Annotated[
    str,
    typer.Argument(
        help="A configuration file (provisor config export, or a bundle's; '-': standard input)."
    ),
]
Prune = Annotated[
    bool,
    typer.Option(
        "--prune",
        help="Also delete what the file leaves out: systems, schedules, links, custom schemas.",
    ),
]
Output = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
]


def read_document(file: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"Cannot read the configuration file {file}: {exc.strerror or exc}", EXIT_INVALID)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"The configuration file {file} is not valid JSON: {exc}", EXIT_INVALID)
    if not isinstance(data, dict):
        fail(f"The configuration file {file} must hold a JSON object.", EXIT_INVALID)
    return data


def _write(data: bytes, output: Path | None, what: str) -> None:
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        output.write_bytes(data)
    except OSError as exc:
        fail(f"Cannot write {output}: {exc.strerror or exc}")
    err.print(f"Wrote {what} to {output}.", markup=False, highlight=False, soft_wrap=True)


def _refused(exc: RemoteError) -> None:
    """A document the server refused: every problem on its own line (exit 2)."""
    problems = exc.problem.get("problems") if exc.status == 400 else None
    if not isinstance(problems, list) or not problems:
        fail(exc.message)
    err.print(
        f"[bold red]Error:[/] the configuration has {len(problems)} problem(s):",
        highlight=False,
        soft_wrap=True,
    )
    for problem in problems:
        err.print(f"  - {problem}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_INVALID)


def _show(plan: Plan, *, every: bool) -> None:
    """The changes (``every``: the unchanged too), a summary, the credentials to enter."""
    symbols = {"create": "+", "update": "~", "delete": "-", "unchanged": "="}
    for change in plan["changes"]:
        if change["action"] == "unchanged" and not every:
            continue
        line = f'{symbols[change["action"]]} {change["action"]} {change["kind"]} "{change["name"]}"'
        say(f"{line}: {change['detail']}" if change["detail"] else line)
    counts = plan["counts"]
    verb = "Applied" if plan["applied"] else "Plan"
    say(
        f"{verb}: {counts['create']} to create, {counts['update']} to update, "
        f"{counts['delete']} to delete, {counts['unchanged']} unchanged."
        if not plan["applied"]
        else f"{verb}: {counts['create']} created, {counts['update']} updated, "
        f"{counts['delete']} deleted, {counts['unchanged']} unchanged."
    )
    for warning in plan["warnings"]:
        say(f"warning: {warning}")
    if plan["credentialsToEnter"]:
        say("Credentials to enter (never in a configuration file):")
        for system, keys in plan["credentialsToEnter"].items():
            options = " ".join(f"--credential {k}" for k in keys)
            say(f'  {system}: {", ".join(keys)}  (provisor systems update "{system}" {options})')


def _pending(plan: Plan) -> int:
    counts = plan["counts"]
    return counts["create"] + counts["update"] + counts["delete"]


@app.command()
def export(output: Output = None, server: Server = None, profile: Profile = None) -> None:
    """Export the configuration: systems (without credentials), transformations, links,
    schedules and custom schemas, in a stable order (two exports diff cleanly)."""
    with connect(server, profile) as remote:
        document = remote.configuration.export()
    write_document(document, output, "the configuration")


def write_document(document: Any, output: Path | None, what: str) -> None:
    """A configuration document as readable JSON, to ``output`` or standard output."""
    _write((json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode(), output, what)


@app.command()
def plan(
    file: FileArg,
    prune: Prune = False,
    every: Annotated[bool, typer.Option("--all", help="List the unchanged objects too.")] = False,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """What applying FILE would change; nothing is changed. Ends with the plan's
    fingerprint, for config apply --expect."""
    document = read_document(file)
    with connect(server, profile) as remote:
        try:
            found = remote.configuration.plan(document, prune=prune)
        except RemoteError as exc:
            _refused(exc)
    if as_json:
        print_json(found)
        return
    _show(found, every=every)
    say(f"Fingerprint: {found['fingerprint']}")


@app.command()
def apply(
    file: FileArg,
    prune: Prune = False,
    yes: Yes = False,
    expect: Annotated[
        str | None,
        typer.Option(
            "--expect",
            metavar="FINGERPRINT",
            help="Apply only if the plan is still the one with this fingerprint (config plan "
            "prints it). Default: the plan shown now.",
        ),
    ] = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Show the plan, ask, then apply exactly that plan (refused when the configuration
    changed in between)."""
    document = read_document(file)
    with connect(server, profile) as remote:
        plan_then_apply(
            lambda: remote.configuration.plan(document, prune=prune),
            lambda fingerprint: remote.configuration.apply(
                document, prune=prune, expect=expect or fingerprint
            ),
            yes=yes,
            as_json=as_json,
        )


def plan_then_apply(
    planned: Callable[[], Plan],
    applying: Callable[[str], Plan],
    *,
    yes: bool,
    as_json: bool,
    where: str = "",
) -> None:
    """Plan (``planned``), show the plan, ask (or ``yes``), then apply exactly that plan
    (``applying`` gets its fingerprint): ``config apply`` and ``tenants import``. ``where``
    ends the question and the report (" to tenant acme")."""
    try:
        found = planned()
    except RemoteError as exc:
        _refused(exc)
    if not as_json:
        _show(found, every=False)
    if _pending(found) == 0:
        if as_json:
            print_json(found)
        else:
            say("Nothing to change.")
        return
    confirm_or_yes(yes, f"Apply these {_pending(found)} change(s){where}?")
    try:
        applied = applying(found["fingerprint"])
    except RemoteError as exc:
        if exc.status == 409:
            fail(f"{exc.message} Nothing was changed.")
        _refused(exc)
    if as_json:
        print_json(applied)
        return
    say(f"Applied {_pending(applied)} change(s){where}.")


@app.command()
def bundles(as_json: AsJSON = False, server: Server = None, profile: Profile = None) -> None:
    """The bundle templates (config bundle NAME writes one, config apply applies it)."""
    with connect(server, profile) as remote:
        found = remote.configuration.bundles()
    if as_json:
        print_json(found)
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("name", no_wrap=True)
    table.add_column("title")
    table.add_column("systems")
    for item in found["items"]:
        systems = ", ".join(f"{s['name']} ({s['role']})" for s in item["systems"])
        table.add_row(item["name"], item["title"], systems)
    print_table(table)


@app.command()
def bundle(
    name: Annotated[str, typer.Argument(help="A bundle's name (config bundles lists them).")],
    output: Output = None,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Write a bundle template's configuration file (edit it, then config plan / apply)."""
    with connect(server, profile) as remote:
        document = remote.configuration.bundle(name)
    data = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
    _write(data, output, f"the bundle {name}")

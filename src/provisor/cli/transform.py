"""``provisor transform``: check a transformation document, run it on one entity."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from provisor.errors import InvalidTransformationError
from provisor.types import Operation

app = typer.Typer(help="Transformations: check and try mapping documents.", no_args_is_help=True)

EXIT_INVALID = 2


def _read(path: str, what: str) -> str:
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        typer.echo(f"Error: cannot read the {what} {path}: {exc.strerror or exc}", err=True)
        raise typer.Exit(EXIT_INVALID) from exc


TypeOption = Annotated[
    str | None,
    typer.Option(
        "--type",
        help="A connector type (ldap, scim, csv, ...) whose property defaults fill in the "
        "properties not given, as for a system of that type.",
    ),
]


def _properties(values: list[str] | None, type_name: str | None) -> dict[str, str]:
    """The --property values, over the defaults of the --type's properties."""
    given = _pairs(values or [], "--property")
    if type_name is None:
        return given
    from provisor.connectors.types import connector_type  # the connectors: for --type only

    try:
        kind = connector_type(type_name)
    except KeyError as exc:
        typer.echo(f"Error: {exc.args[0]}", err=True)
        raise typer.Exit(EXIT_INVALID) from exc
    return kind.effective(given)


def _pairs(values: list[str], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            typer.echo(f"Error: {option} takes KEY=VALUE, not {item!r}", err=True)
            raise typer.Exit(EXIT_INVALID)
        pairs[key] = value
    return pairs


@app.command()
def validate(
    file: Annotated[str, typer.Argument(help="The transformation (JSON, '-' for stdin).")],
    prop: Annotated[
        list[str] | None,
        typer.Option("--property", help="A system property KEY=VALUE for %placeholders%."),
    ] = None,
    type_name: TypeOption = None,
) -> None:
    """Check a document: exit 0 when valid, 2 with every problem listed (a property a name
    uses and neither --property nor --type sets is one)."""
    from provisor.transform.document import compile_document  # the engine: when a command runs

    text = _read(file, "transformation")
    properties = _properties(prop, type_name)
    try:
        entities = compile_document(text, properties)
    except InvalidTransformationError as exc:
        typer.echo(f"Invalid transformation ({len(exc.problems)} problem(s)):")
        for problem in exc.problems:
            typer.echo(f"  - {problem}")
        raise typer.Exit(EXIT_INVALID) from exc
    summary = ", ".join(
        f"{name}: {len(entity.mappings)} mapping(s)" + (" (ignored)" if entity.ignore else "")
        for name, entity in entities.items()
    )
    typer.echo(f"Valid. {summary or 'No entity section.'}")


@app.command()
def apply(
    file: Annotated[str, typer.Argument(help="The transformation (JSON, '-' for stdin).")],
    input_file: Annotated[
        str, typer.Option("--input", help="The entity (JSON file, '-' for stdin).")
    ],
    entity_type: Annotated[str, typer.Option(help="user, group, ...")] = "user",
    prop: Annotated[
        list[str] | None,
        typer.Option("--property", help="A system property KEY=VALUE (repeat for several)."),
    ] = None,
    variable: Annotated[
        list[str] | None,
        typer.Option("--variable", help="A variable NAME=VALUE, e.g. entityIdTargetSystem=42."),
    ] = None,
    operation: Annotated[
        Operation,
        typer.Option(help="The write prepared: create, update, patch, delete; or read."),
    ] = Operation.CREATE,
    trace: Annotated[bool, typer.Option(help="Explain each mapping on stderr.")] = False,
    type_name: TypeOption = None,
) -> None:
    """Transform one entity and print the result (exit 1 if skipped or failed, 2 if invalid)."""
    from provisor.transform import Deleted, Failed, Ignored, Skipped, Transformation, Transformed

    if file == "-" and input_file == "-":
        typer.echo("Error: the document and the entity cannot both come from stdin", err=True)
        raise typer.Exit(EXIT_INVALID)
    document = _read(file, "transformation")
    properties = _properties(prop, type_name)
    try:
        entity: Any = orjson.loads(_read(input_file, "entity"))
    except orjson.JSONDecodeError as exc:
        typer.echo(f"Error: the entity is not valid JSON: {exc}", err=True)
        raise typer.Exit(EXIT_INVALID) from exc
    try:
        transformation = Transformation(document, properties)
    except InvalidTransformationError as exc:
        typer.echo("Invalid transformation:", err=True)
        for problem in exc.problems:
            typer.echo(f"  - {problem}", err=True)
        raise typer.Exit(EXIT_INVALID) from exc
    outcome = transformation.apply(
        entity_type,
        entity,
        operation=operation,
        variables=dict(_pairs(variable or [], "--variable")),
        trace=trace,
    )
    if trace and isinstance(outcome, Transformed | Skipped | Failed):
        for step in outcome.trace:
            detail = f" ({step.detail})" if step.detail else ""
            values = "".join(
                f" {name}={orjson.dumps(shown).decode()}"
                for name, shown in (("input", step.input), ("output", step.value))
                if shown is not None
            )
            typer.echo(f"{step.label}: {step.status}{detail}{values}", err=True)
    if isinstance(outcome, Transformed):
        if trace and outcome.variables:
            typer.echo("variables: " + orjson.dumps(outcome.variables).decode(), err=True)
        if outcome.soft_delete:
            typer.echo("Delete as an update (deleteEntity mappings).", err=True)
        sys.stdout.write(orjson.dumps(outcome.document, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if isinstance(outcome, Deleted):
        typer.echo(
            "Delete: the document has no deleteEntity mappings; the entity would be "
            "deleted in the target.",
            err=True,
        )
        return
    kind = {Skipped: "Skipped", Failed: "Failed", Ignored: "Ignored"}[type(outcome)]
    typer.echo(f"{kind}: {outcome.reason}", err=True)
    raise typer.Exit(1)

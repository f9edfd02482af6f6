"""The CSV File connector type and its properties."""

from __future__ import annotations

from provisor.connectors.types import (
    ST,
    ConnectorType,
    Kind,
    PropertySpec,
    T,
    generic_properties,
    register,
)

TYPE = register(
    ConnectorType(
        id="csv",
        name="CSV File",
        prefix="csv",
        roles=ST,
        implementation="provisor.connectors.csv.connector:CSVConnector",
        aliases=("CSV",),
        description="Users and groups as the rows of CSV files on the server.",
        properties=(
            PropertySpec(
                "csv.user.file",
                Kind.FILE,
                required=ST,
                description="Path of the users file; relative to the data folder (an absolute "
                "path must lie in it or in a folder of PROVISOR_FILE_ROOTS). Missing folders "
                "of a target are created.",
            ),
            PropertySpec(
                "csv.group.file",
                Kind.FILE,
                description="Path of the groups file, like csv.user.file; without it the "
                "system has no groups.",
            ),
            PropertySpec(
                "csv.delimiter",
                Kind.CHOICE,
                default=",",
                seeded=True,
                choices=(",", ";", "\\t", "|"),
                description="Cell separator; \\t for a tab.",
            ),
            PropertySpec(
                "csv.encoding",
                default="utf-8",
                seeded=True,
                description="Text encoding of the files (a Python codec name: utf-8, latin-1).",
            ),
            PropertySpec("csv.id.column", default="id", description="Column of the entity ids."),
            PropertySpec(
                "csv.user.unique.attribute",
                default="userName",
                roles=T,
                description="Column(s) no two users share, like the id (a comma list; none: "
                "only the id): a second create is a conflict, resolved to the existing row.",
            ),
            PropertySpec(
                "csv.group.unique.attribute",
                default="displayName",
                roles=T,
                description="Column(s) no two groups share, like the id (none: only the id).",
            ),
            PropertySpec(
                "csv.multivalue.separator",
                default="|",
                description="Separator of the values in one cell (members, [] columns).",
            ),
            PropertySpec(
                "csv.page.size",
                Kind.INTEGER,
                default="1000",
                minimum=1,
                description="Rows per page of a read; changes written per flush.",
            ),
            PropertySpec(
                "csv.escape.formulas",
                Kind.BOOLEAN,
                default="true",
                roles=T,
                description="Cells written that start with =, +, -, @, a tab or a carriage "
                "return get a leading ' so that spreadsheets do not run them as formulas; "
                "false writes them as they are.",
            ),
            *generic_properties(),
        ),
    )
)

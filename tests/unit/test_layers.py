"""The domain cores (SCIM, transformations) know nothing of HTTP or SQL."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "modules",
    [
        "provisor.scim.patch, provisor.scim.values, provisor.scim.projection,"
        " provisor.scim.custom_schemas, provisor.scim.members",
        "provisor.transform, provisor.transform.defaults",
    ],
)
def test_cores_import_neither_fastapi_nor_sqlalchemy(modules: str) -> None:
    code = (
        f"import sys; import {modules};"
        " print(sorted(m for m in ('fastapi', 'starlette', 'sqlalchemy', 'httpx')"
        " if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"

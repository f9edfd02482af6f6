"""The SCIM core knows nothing of HTTP or SQL."""

from __future__ import annotations

import subprocess
import sys


def test_scim_core_imports_neither_fastapi_nor_sqlalchemy() -> None:
    code = (
        "import sys; import provisor.scim.patch, provisor.scim.values, provisor.scim.projection,"
        " provisor.scim.custom_schemas, provisor.scim.members;"
        " print(sorted(m for m in ('fastapi', 'starlette', 'sqlalchemy') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"

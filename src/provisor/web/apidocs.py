"""API documentation pages (Swagger UI at ``/docs``, ReDoc at ``/redoc``) served from the package.

The pages load only files shipped in ``provisor/web/static`` (see its ``VERSIONS.md``), so they
work on an air-gapped host, and their Content-Security-Policy lets the browser fetch nothing from
another origin. Both pages stay unauthenticated (docs/decisions/0005).
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

STATIC_PATH = "/static"

# Scripts and everything they fetch come from this origin only. Two exceptions the vendored
# libraries need, neither of which reaches another host: ReDoc's styled-components writes <style>
# elements ('unsafe-inline' styles), and its search index runs in a worker built from a blob: URL.
# Swagger UI's stylesheet draws its icons from data: URLs.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

SWAGGER_UI = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - Swagger UI</title>
<link rel="icon" type="image/png" href="{static}/swagger-ui/favicon-32x32.png">
<link rel="stylesheet" href="{static}/swagger-ui/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="{static}/swagger-ui/swagger-ui-bundle.js"></script>
<script src="{static}/swagger-ui-init.js"></script>
</body>
</html>
"""

REDOC = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - ReDoc</title>
<link rel="icon" type="image/png" href="{static}/swagger-ui/favicon-32x32.png">
<link rel="stylesheet" href="{static}/redoc.css">
</head>
<body>
<noscript>ReDoc needs JavaScript to show the API documentation.</noscript>
<redoc spec-url="{openapi}"></redoc>
<script src="{static}/redoc/redoc.standalone.js"></script>
</body>
</html>
"""

router = APIRouter(include_in_schema=False)


def _page(request: Request, template: str) -> HTMLResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    app = request.app
    html = template.format(
        title=escape(app.title),
        static=escape(root + STATIC_PATH),
        openapi=escape(root + (app.openapi_url or "")),
    )
    return HTMLResponse(html, headers=HEADERS)


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    return _page(request, SWAGGER_UI)


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    return _page(request, REDOC)


def install(app: FastAPI) -> None:
    """Serve the two pages and the static files they load (build the app with docs_url=None)."""
    app.include_router(router)
    app.mount(STATIC_PATH, StaticFiles(packages=[("provisor.web", "static")]), name="static")

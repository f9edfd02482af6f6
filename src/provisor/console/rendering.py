"""What every console page shares: the signed-in session and its context, CSRF checks,
security headers, and rendering templates inside the layout.

A console route is a :class:`ConsoleRoute`: before the handler runs it finds the session of the
request's cookie (no session: a redirect to the sign-in page), checks the CSRF token and the
origin of every state change, and turns a service's error into a readable page. Services decide
what the administrator may do; the templates only hide what they would refuse.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, unquote, urlsplit

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from provisor.admins.model import Session
from provisor.admins.service import PENDING
from provisor.context import INSTALLATION, Context, Permission
from provisor.errors import PermissionDeniedError, ProvisorError
from provisor.runtime import Services
from provisor.web.access import note_actor
from provisor.web.auth import client_address, over_https
from provisor.web.errors import status_of
from provisor.web.paths import route_path
from provisor.web.request_ids import request_id_of
from provisor.web.tenancy import tenant_of

ROOT = "/console"
OPERATOR_ROOT = "/operator" + ROOT  # the installation's console: its operators' tenants
COOKIE = "provisor_console"
LOGIN_COOKIE = "provisor_login"  # the sign-in form's CSRF token (double submit)
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}
TEMPLATES = Path(__file__).parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES))
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True

NAV: tuple[tuple[str, str], ...] = (
    ("Home", ""),
    ("Systems", "/systems"),
    ("Jobs", "/jobs"),
    ("Schedules", "/schedules"),
    ("Real-time", "/realtime"),
    ("Proxy activity", "/proxy"),
    ("Identity timeline", "/timeline"),
    ("Directory", "/directory/users"),
    ("Certificates", "/certificates"),
    ("Notifications", "/notifications"),
    ("Technical users", "/clients"),
    ("Administrators", "/administrators"),
    ("Audit log", "/audit"),
)
OPERATOR_NAV: tuple[tuple[str, str], ...] = (("Tenants", ""), ("Audit log", "/audit"))


class SignIn(Exception):
    """No live session: the browser goes to the sign-in page (then back)."""


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def base(request: Request) -> str:
    """The console's URL path below the tenant's prefix (``/t/<tenant>/console``), or the
    installation's (``/operator/console``) for its operators."""
    root: str = request.scope.get("root_path", "")
    return root + (OPERATOR_ROOT if tenant_of(request.scope) == INSTALLATION else ROOT)


def url(request: Request, path: str = "", **query: Any) -> str:
    """A console URL: ``path`` below the console's root, with ``query`` encoded."""
    found = base(request) + path
    pairs = [(k, v) for k, v in query.items() if v not in (None, "")]
    if pairs:
        found += "?" + "&".join(f"{quote(k)}={quote(str(v), safe='')}" for k, v in pairs)
    return found


def session_of(request: Request) -> Session:
    found: Session | None = getattr(request.state, "console_session", None)
    if found is None:
        raise SignIn()
    return found


def context(request: Request) -> Context:
    """The context of the request's service calls: the signed-in administrator, the tenant
    the request addressed, the request id."""
    return session_of(request).context(request_id_of(request.scope), client_address(request))


async def _context(request: Request) -> Context:
    return context(request)


ConsoleContext = Annotated[Context, Depends(_context)]


def can_change(request: Request) -> bool:
    """Whether the signed-in administrator may change things (the services decide again)."""
    return session_of(request).administrator.actor().allows(Permission.ADMIN)


def offer_change(request: Request) -> None:
    """A page whose only purpose is a change (a creation form) is not offered to a viewer
    (the service would refuse the change anyway)."""
    if not can_change(request):
        raise PermissionDeniedError(
            "This form makes a change, and a viewer changes nothing: ask an administrator."
        )


def render(
    request: Request,
    template: str,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **values: Any,
) -> Response:
    """``template`` with ``values`` and the layout's own (session, CSRF token, URLs)."""
    session: Session | None = getattr(request.state, "console_session", None)
    operator = tenant_of(request.scope) == INSTALLATION
    values.setdefault("notice", unquote(request.cookies.get("provisor_notice", "")))
    response = templates.TemplateResponse(
        request,
        template,
        {
            "session": session,
            "csrf": session.csrf if session else getattr(request.state, "login_csrf", ""),
            "can_change": session is not None and can_change(request),
            "base": base(request),
            "nav": OPERATOR_NAV if operator else NAV,
            "tenant": "installation" if operator else tenant_of(request.scope),
            "current": route_path(request.scope)[len(OPERATOR_ROOT if operator else ROOT) :],
            **values,
        },
        status_code=status,
        headers=dict(headers or {}),
    )
    if values["notice"]:
        response.delete_cookie("provisor_notice", path=base(request))
    return response


def redirect(request: Request, path: str, notice: str = "", **query: Any) -> Response:
    """See other (303) to a console page, with a one-time ``notice`` shown there."""
    target = url(request, path, **query)
    if request.headers.get("hx-request"):
        response: Response = Response(status_code=204, headers={"HX-Location": target})
    else:
        response = RedirectResponse(target, status_code=303)
    if notice:
        response.set_cookie(
            "provisor_notice",
            quote(notice[:300]),  # cookies are Latin-1: any text fits encoded
            max_age=60,
            path=base(request),
            httponly=True,
            samesite="strict",
            secure=is_https(request),
        )
    return response


def is_https(request: Request) -> bool:
    return over_https(request)


def same_origin(request: Request) -> bool:
    """Whether a state change comes from the console's own pages: its Origin (or, without
    one, its Referer) is this server's, when the browser sent either."""
    sent = request.headers.get("origin") or request.headers.get("referer")
    if not sent or sent == "null":
        return sent is None
    parts = urlsplit(sent)
    scheme = "https" if is_https(request) else request.url.scheme  # behind a trusted proxy too
    return f"{parts.scheme}://{parts.netloc}" == f"{scheme}://{request.url.netloc}"


async def csrf_token(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


def error_page(request: Request, exc: ProvisorError) -> Response:
    status = status_of(exc)
    return render(request, "error.html", status=min(status, 503), message=exc.message)


def invalid_page(request: Request, exc: RequestValidationError) -> Response:
    """A form or query that does not fit its route: what is wrong, field by field."""
    lines = []
    for error in exc.errors()[:20]:
        where = " ".join(str(part) for part in error.get("loc", ())[1:]) or "the request"
        lines.append(f"{where}: {error.get('msg', 'invalid')}")
    return render(request, "error.html", status=400, message="; ".join(lines))


class ConsoleRoute(APIRoute):
    """A console page: the administrator's session first (else the sign-in page), the CSRF
    token and same origin of every state change next, then the handler; a service's error
    becomes a readable page, and every response carries the console's security headers and
    its server time (``Server-Timing``)."""

    public = False  # sign-in pages: no session needed

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        public = self.public

        async def console(request: Request) -> Response:
            started = time.perf_counter()
            try:
                if not public:
                    await _sign_in(request)
                    if request.method not in SAFE_METHODS:
                        await _check_change(request, session_of(request).csrf)
                response = await handler(request)
            except SignIn:
                response = _to_sign_in(request)
            except ProvisorError as exc:
                response = await run_in_threadpool(error_page, request, exc)
            except RequestValidationError as exc:
                response = await run_in_threadpool(invalid_page, request, exc)
            for name, value in HEADERS.items():
                response.headers.setdefault(name, value)
            elapsed = (time.perf_counter() - started) * 1000
            response.headers["Server-Timing"] = f"app;dur={elapsed:.1f}"
            return response

        return console


class PublicRoute(ConsoleRoute):
    public = True


async def _sign_in(request: Request) -> None:
    token = request.cookies.get(COOKIE, "")
    if not token:
        raise SignIn()
    found = await run_in_threadpool(
        services(request).administrators.session, tenant_of(request.scope), token
    )
    if found is None or found.method == PENDING:
        raise SignIn()
    request.state.console_session = found
    note_actor(request.scope, found.administrator.actor())


async def _check_change(request: Request, expected: str) -> None:
    if not same_origin(request):
        raise PermissionDeniedError("This change comes from another site: refused.")
    presented = await csrf_token(request)
    if not presented or not secrets.compare_digest(presented, expected):
        raise PermissionDeniedError(
            "This form has expired (its CSRF token does not match): reload the page and try again."
        )


def _to_sign_in(request: Request) -> Response:
    here = route_path(request.scope)
    back = here if request.method == "GET" and here.startswith(ROOT) else ROOT
    if request.url.query and request.method == "GET":
        back += "?" + request.url.query
    target = url(request, "/login", next=back)
    response: Response
    if request.headers.get("hx-request"):
        response = Response(status_code=401, headers={"HX-Redirect": target})
    else:
        response = RedirectResponse(target, status_code=303)
    return response


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    """The session's cookie: HttpOnly, SameSite=Strict, Secure under HTTPS, for the
    console's path only, ending with the browser (the server ends the session itself)."""
    response.set_cookie(
        COOKIE,
        token,
        path=base(request),
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )

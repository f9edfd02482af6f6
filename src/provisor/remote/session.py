"""One authenticated HTTP session with a provisor server: requests, and errors as sentences."""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from provisor import __version__

DEFAULT_TIMEOUT = 60.0


class RemoteError(Exception):
    """The server refused a request, or could not be reached (``status`` 0)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        problem: Mapping[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.problem: Mapping[str, Any] = problem or {}
        self.message = detail or title
        super().__init__(self.message)


def path(*segments: str) -> str:
    """A URL path from a fixed prefix and segments, each percent-encoded (a name with ``/``,
    ``?`` or ``..`` stays one segment): ``path("/api/v1/systems", name, "jobs")``."""
    prefix, *rest = segments
    return "/".join([prefix.rstrip("/"), *(quote(s, safe="") for s in rest)])


class Session:
    """HTTP calls to one server as one technical user: HTTP Basic with a client id and secret,
    or a client certificate (``cert`` and ``key``, PEM files). ``ca_file`` verifies a server
    whose certificate a private CA issued; the system's trust store otherwise. ``transport``
    replaces the network (an in-process server in tests)."""

    def __init__(
        self,
        server: str,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        cert: Path | None = None,
        key: Path | None = None,
        ca_file: Path | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.server = server.rstrip("/")
        auth = (client_id, client_secret or "") if client_id else None
        verify: Any = True
        if ca_file is not None or cert is not None:
            import ssl

            verify = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
            if cert is not None:
                verify.load_cert_chain(str(cert), str(key) if key else None)
        self._http = httpx.Client(
            base_url=self.server,
            auth=auth,
            verify=verify,
            transport=transport,
            timeout=timeout,
            headers={"User-Agent": f"provisor-cli/{__version__}"},
            follow_redirects=False,
        )

    def call(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """The response to a request; RemoteError unless it succeeded (2xx)."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(
                method, url, params=query, json=json, content=content, headers=headers
            )
        except httpx.TimeoutException:
            raise RemoteError(0, f"{self.server} did not answer in time.") from None
        except httpx.HTTPError as exc:
            raise RemoteError(
                0,
                f"Cannot reach the provisor server at {self.server}: {_reason(exc)}. Is it "
                "running, and is the address right (provisor login, --server or PROVISOR_SERVER)?",
            ) from None
        if response.is_success:
            return response
        raise _refusal(response)

    def json(self, method: str, url: str, **kwargs: Any) -> Any:
        """The JSON body of a successful call (None for an empty body)."""
        response = self.call(method, url, **kwargs)
        return response.json() if response.content else None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _reason(exc: httpx.HTTPError) -> str:
    cause: BaseException = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    text = str(cause) or type(cause).__name__
    return text.rstrip(".")


def _refusal(response: httpx.Response) -> RemoteError:
    """The error of a failed response: the problem JSON's (or SCIM error's) title and detail."""
    status = response.status_code
    try:
        body = response.json()
    except (jsonlib.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        reason = response.reason_phrase or "error"
        return RemoteError(status, f"The server answered {status} {reason}.")
    title = str(body.get("title") or response.reason_phrase or status)
    detail = str(body.get("detail") or "")
    if status == 401:
        detail = (
            f"{detail} Check the credentials (provisor login, or PROVISOR_CLIENT_ID and "
            "PROVISOR_CLIENT_SECRET).".strip()
        )
    return RemoteError(status, title, detail, body)

"""OpenID providers on loopback for the single sign-on tests: oidc-provider-mock (a real
provider built on Authlib and Flask) in a thread, with subjects whose ``groups`` claim maps to
console roles, and the browser's part of its code flow."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import werkzeug.serving

ADMINS = "provisor-admins"
VIEWERS = "provisor-viewers"


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """A WSGI app on a loopback port in a thread; its base URL."""
    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def mock_provider() -> Iterator[str]:
    """The mock provider (nonces required) with alice (administrator: a list holding the
    value), victor (viewer: a string, no username) and mallory (no value that maps); its
    issuer."""
    import oidc_provider_mock

    users = [
        oidc_provider_mock.User(
            sub="alice",
            claims={"groups": [ADMINS, "staff"], "preferred_username": "alice", "email": "a@x.org"},
        ),
        oidc_provider_mock.User(sub="victor", claims={"groups": VIEWERS, "email": "v@x.org"}),
        oidc_provider_mock.User(sub="mallory", claims={"groups": ["staff"]}),
    ]
    with serving(oidc_provider_mock.app(require_nonce=True, user_claims=users)) as url:
        yield url


def consent(url: str, subject: str | None) -> str:
    """The browser at the provider: its form, submitted for ``subject`` (or denied); where
    the provider sends the browser back (the callback with its parameters)."""
    with httpx.Client() as browser:
        form = browser.get(url)
        assert form.status_code == 200 and 'name="sub"' in form.text, form.text
        data = {"sub": subject} if subject is not None else {"action": "deny"}
        answer = browser.post(url, data=data)
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def callback_params(location: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(location).query))

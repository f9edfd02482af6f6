"""Item 9 of issue 13: /docs and /redoc load nothing from the internet."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from tests.conftest import LiveServer

PAGES = ["/docs", "/redoc"]
CONTENT_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
}
# Sources a directive may list: none of them names another host.
LOCAL_SOURCES = {"'self'", "'none'", "'unsafe-inline'", "data:", "blob:"}


class References(HTMLParser):
    """The URLs a page makes the browser fetch, and whether it carries inline code."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "spec-url", "data-openapi-url"} and value is not None:
                self.urls.append(value)
            if name == "style" or name.startswith("on"):
                self.inline.append(f"<{tag} {name}=...>")
        self._in = tag if tag in {"script", "style"} else None

    def handle_data(self, data: str) -> None:
        if self._in and data.strip():
            self.inline.append(f"<{self._in}>{data.strip()[:40]}")

    def handle_endtag(self, tag: str) -> None:
        self._in = None


@pytest.mark.parametrize("page", PAGES)
def test_documentation_pages_load_only_local_files(sqlite_server: LiveServer, page: str) -> None:
    with sqlite_server.client(auth=None) as anonymous:
        response = anonymous.get(page)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/html")
        references = References()
        references.feed(response.text)
        assert len(references.urls) >= 3, response.text
        for url in references.urls:
            parts = urlsplit(url)
            assert not parts.scheme and not parts.netloc and url.startswith("/"), url
        assert references.inline == [], "the policy forbids inline scripts and styles"
        for url in references.urls:
            asset = anonymous.get(url)
            assert asset.status_code == 200, url
            suffix = url[url.rfind(".") :]
            expected = CONTENT_TYPES.get(suffix, "application/json")
            assert asset.headers["content-type"].startswith(expected), (url, asset.headers)


@pytest.mark.parametrize("page", PAGES)
def test_documentation_pages_forbid_other_origins(sqlite_server: LiveServer, page: str) -> None:
    with sqlite_server.client(auth=None) as anonymous:
        response = anonymous.get(page)
    policy = response.headers.get("content-security-policy")
    assert policy, "no Content-Security-Policy header"
    directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
    assert directives["default-src"] == ["'none'"]
    assert directives["script-src"] == ["'self'"]
    for name, sources in directives.items():
        assert set(sources) <= LOCAL_SOURCES, (name, sources)
    assert response.headers["x-content-type-options"] == "nosniff"


def test_swagger_ui_is_told_not_to_call_the_public_validator(sqlite_server: LiveServer) -> None:
    with sqlite_server.client(auth=None) as anonymous:
        init = anonymous.get("/static/swagger-ui-init.js")
    assert init.status_code == 200
    assert "validatorUrl: null" in init.text

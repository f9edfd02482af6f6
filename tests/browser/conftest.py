"""Browser tests: Debian's chromium driven by Playwright against a live server, axe-core checks.

Playwright never downloads a browser here (no ``playwright install``): the tests launch the
system's chromium, ``/usr/bin/chromium`` or the one named by PROVISOR_CHROMIUM. axe-core comes
from npm (tests/browser/package-lock.json, installed by scripts/test into node_modules). Each
pytest-xdist worker starts its own browser, and every test gets its own server and browser
context. PROVISOR_SCREENSHOTS=<folder> saves full-page PNGs of the pages the journeys visit.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    Route,
    ViewportSize,
    expect,
    sync_playwright,
)

from tests.conftest import LiveServer

HERE = Path(__file__).parent
# Read when the module is imported: tests/conftest.py's clean_environ removes every PROVISOR_*
# variable before each test.
CHROMIUM = os.environ.get("PROVISOR_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = os.environ.get("PROVISOR_SCREENSHOTS")
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
VIEWPORT: ViewportSize = {"width": 1366, "height": 768}  # a laptop's screen
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING_IMPACTS = frozenset({"serious", "critical"})
ACTIONS = 10_000  # ms an action (click, fill...) waits for its element
# ms an expect() waits for its condition (it passes as soon as the condition holds): the
# server answers through other processes (a Test Connection calls a peer server) on a machine
# the suite's other workers keep busy; 5 s (Playwright's default) once ran out in CI.
EXPECTATIONS = 20_000
expect.set_options(timeout=EXPECTATIONS)


# -- the browser: one per worker ------------------------------------------------------------------


# Per test, not per worker: the sync API runs an event loop in the test's thread while it
# lives, and the other tests a worker runs meanwhile call asyncio.run in that thread.
@pytest.fixture
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Headless chromium from the system (its sandbox needs a user other than root)."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"chromium is required at {CHROMIUM} (Debian: apt-get install chromium; another "
            "path with PROVISOR_CHROMIUM); scripts/test installs it",
            pytrace=False,
        )
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
    yield launched
    launched.close()


# -- the whole application on loopback ------------------------------------------------------------


@pytest.fixture
def live(sqlite_server: LiveServer) -> LiveServer:
    """The whole application (the APIs and the console) on a fresh SQLite database, served on
    loopback; a live server makes every browser test slow (tests/conftest.py's rule)."""
    return sqlite_server


# -- pages: a context per test, watched for errors ------------------------------------------------


# A request to any host but this machine's loopback (matched in Playwright's driver: the
# loopback's requests never wait for Python).
EXTERNAL = re.compile(r"^(https?|wss?)://(?!(127\.0\.0\.1|localhost|\[::1\])[:/])")
# chromium asks every site for /favicon.ico, whether or not its pages name an icon
FAVICON = re.compile(r"/favicon\.ico\)$")


@dataclass
class BrowserLog:
    """What the browser reported as an error: console errors, uncaught exceptions,
    Content-Security-Policy violations (chromium reports those as console errors too) and
    requests to other hosts than this machine's loopback (refused). A test
    that provokes an error on purpose (a 403 page loads as a failed resource) allows it."""

    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=lambda: [FAVICON])

    def allow(self, pattern: str) -> None:
        """Errors matching the regular expression ``pattern`` no longer fail the test."""
        self.allowed.append(re.compile(pattern))

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} ({message.location.get('url', '')})")

    def on_page_error(self, error: Exception) -> None:
        self.errors.append(f"uncaught: {error}")

    def on_external(self, route: Route) -> None:
        """Nothing is fetched from outside this machine: the request is refused and noted."""
        self.errors.append(f"external request: {route.request.url}")
        route.abort()

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


# Reports every CSP violation as a console error with its directive (chromium's own message
# names it too, but not for every kind of violation). An init script runs despite the CSP.
CSP_REPORTER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
    + ` at ${event.sourceFile}:${event.lineNumber}`);
});
"""


@pytest.fixture
def browser_log() -> BrowserLog:
    return BrowserLog()


@pytest.fixture
def page(browser: Browser, live: LiveServer, browser_log: BrowserLog) -> Iterator[Page]:
    """A page in a fresh context (no cookie) on a laptop's screen, relative URLs on ``live``;
    the test fails if the browser reported an error it did not allow."""
    context = browser.new_context(viewport=VIEWPORT, base_url=live.url)
    context.set_default_timeout(ACTIONS)
    context.add_init_script(CSP_REPORTER)
    context.route(EXTERNAL, browser_log.on_external)
    opened = context.new_page()
    opened.on("console", browser_log.on_console)
    opened.on("pageerror", browser_log.on_page_error)
    yield opened
    context.close()
    unexpected = browser_log.unexpected()
    assert not unexpected, "the browser reported errors:\n" + "\n".join(unexpected)


# -- accessibility and screenshots ----------------------------------------------------------------


def _axe_source() -> str:
    if not AXE.is_file():
        pytest.fail(
            f"axe-core is missing ({AXE}): run scripts/test, or `npm ci` in {HERE}", pytrace=False
        )
    return AXE.read_text()


def assert_accessible(page: Page) -> None:
    """Run axe-core (WCAG 2.1 A and AA rules) on the page as it is; fail listing every
    violation of serious or critical impact. axe is evaluated through the DevTools protocol,
    which the page's Content-Security-Policy does not govern: the page's CSP stays in force."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    results = page.evaluate(
        "(tags) => window.axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_TAGS
    )
    blocking = [v for v in results["violations"] if v["impact"] in BLOCKING_IMPACTS]
    lines = [f"{v['id']} ({v['impact']}): {v['help']} - {_targets(v['nodes'])}" for v in blocking]
    assert not lines, f"axe found accessibility violations on {page.url}:\n" + "\n".join(lines)


def _targets(nodes: list[dict[str, Any]], shown: int = 5) -> str:
    """The CSS selectors of a violation's first ``shown`` elements, and how many more."""
    selectors = [" ".join(node["target"]) for node in nodes]
    more = f" and {len(selectors) - shown} more" if len(selectors) > shown else ""
    return ", ".join(selectors[:shown]) + more


def screenshot(page: Page, name: str) -> None:
    """Save a full-page PNG ``<name>.png`` in PROVISOR_SCREENSHOTS, when it is set."""
    if SCREENSHOTS:
        folder = Path(SCREENSHOTS)
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=folder / f"{name}.png", full_page=True)

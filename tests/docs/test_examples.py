"""Every shell and HTTP example of README.md and docs/ runs, so that none can drift.

One test per document: a real ``provisor serve`` on a free loopback port, started in a
fresh working folder (its data folder is ``./provisor-data`` there, as the README says),
then the document's examples in order in one bash session (``set -euo pipefail``: variables
carry from block to block, and every command must succeed unless its line ends with
``# exit N``). ``provisor`` and ``python3`` on the session's PATH are the interpreter running
the tests; HOME is a fresh folder (``provisor login`` writes its profile there); no
``PROVISOR_*`` variable is set but those the document sets. The documents write the server
as ``127.0.0.1:8000``: that address becomes the test server's. The markers the Markdown may
carry are explained in ``tests/docs/examples.py``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.docs.examples import MARK, Example, documents, examples, script

ROOT = Path(__file__).resolve().parents[2]

# Per document: examples executed, examples excluded (by a visible "not run" marker).
# Setup comments are counted with the executed ones.
COUNTS: dict[str, tuple[int, int]] = {
    "README.md": (26, 5),
    "docs/deletions.md": (3, 0),
    "docs/operations.md": (14, 9),
    "docs/performance.md": (0, 14),
    "docs/proxy.md": (1, 0),
    "docs/security-testing.md": (0, 1),
    "docs/security.md": (0, 1),
}

STARTED = "Application startup complete"
EXAMPLES_TIMEOUT = 600  # seconds for all the examples of one document (a loaded machine)


@dataclass
class Server:
    """A ``provisor serve`` subprocess and what it printed."""

    process: subprocess.Popen[str]
    address: str
    lines: list[str] = field(default_factory=list)

    def output(self) -> str:
        return "".join(self.lines[-60:])


def _environment(bin_dir: Path, home: Path) -> dict[str, str]:
    """The session's environment: the caller's, without settings, proxies or a profile."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("PROVISOR_")
        and "proxy" not in name.lower()
        and name not in ("XDG_CONFIG_HOME", "VIRTUAL_ENV")
    }
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(home),
        COLUMNS="160",
        NO_COLOR="1",
        TERM="dumb",
    )
    return env


def _shims(bin_dir: Path) -> None:
    """``provisor``, ``python3`` and ``python``: the interpreter running the tests."""
    bin_dir.mkdir()
    commands = {
        "provisor": f'exec "{sys.executable}" -m provisor "$@"\n',
        "python3": f'exec "{sys.executable}" "$@"\n',
        "python": f'exec "{sys.executable}" "$@"\n',
    }
    for name, body in commands.items():
        shim = bin_dir / name
        shim.write_text("#!/bin/sh\n" + body)
        shim.chmod(0o755)


def _read(server: Server, started: threading.Event) -> None:
    assert server.process.stdout is not None
    for line in server.process.stdout:
        server.lines.append(line)
        if STARTED in line:
            started.set()
    started.set()  # the process ended: whoever waits looks at it


@pytest.fixture
def session(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str], Server]]:
    """A working folder, the environment of the bash session, and a server serving there."""
    work, home, bin_dir = tmp_path / "work", tmp_path / "home", tmp_path / "bin"
    work.mkdir()
    home.mkdir()
    _shims(bin_dir)
    env = _environment(bin_dir, home)
    port = free_port()
    process = subprocess.Popen(
        ["provisor", "serve", "--port", str(port), "--workers", "1"],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its worker and jobs processes stop with it
    )
    server = Server(process=process, address=f"127.0.0.1:{port}")
    started = threading.Event()
    reader = threading.Thread(target=_read, args=(server, started), daemon=True)
    reader.start()
    try:
        if not started.wait(60) or process.poll() is not None:
            pytest.fail(f"provisor serve did not start:\n{server.output()}", pytrace=False)
        yield work, env, server
    finally:
        _stop(process)
        reader.join(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _failure(runnable: list[Example], output: str, status: int) -> str:
    """Which example failed, its source and what the session printed since it began."""
    marks = list(re.finditer(rf"^{MARK} (\d+)$", output, re.MULTILINE))
    number = int(marks[-1].group(1)) if marks else 0
    since = output[marks[-1].end() :] if marks else output
    if number >= len(runnable):
        return f"the session exited with {status} after the last example:\n{since}"
    example = runnable[number]
    return (
        f"{example.where} ({example.language}) failed with exit status {status}:\n"
        f"{example.source}\n--- output ---\n{since[-6000:]}"
    )


@pytest.mark.integration
@pytest.mark.slow  # a server and a shell process per command
@pytest.mark.timeout(EXAMPLES_TIMEOUT + 120)
@pytest.mark.parametrize("document", [str(path) for path in documents(ROOT)])
def test_examples(document: str, request: pytest.FixtureRequest) -> None:
    found = examples(ROOT, Path(document))
    runnable = [example for example in found if example.excluded is None]
    counts = (len(runnable), len(found) - len(runnable))
    if runnable:
        _run(runnable, request.getfixturevalue("session"))
    expected = COUNTS.get(document, (0, 0))
    assert counts == expected, f"{document}: (executed, excluded) {counts}, COUNTS says {expected}"


def _run(runnable: list[Example], session: tuple[Path, dict[str, str], Server]) -> None:
    """Run the examples in one bash session; fail naming the first that fails."""
    work, env, server = session
    (work.parent / "examples.sh").write_text(script(runnable, server.address))
    try:
        done = subprocess.run(
            ["bash", str(work.parent / "examples.sh")],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=EXAMPLES_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.output.decode() if isinstance(exc.output, bytes) else exc.output or ""
        message = _failure(runnable, output, -1)
        pytest.fail(f"timed out after {EXAMPLES_TIMEOUT} s: {message}", pytrace=False)
    if done.returncode != 0:
        message = _failure(runnable, done.stdout, done.returncode)
        pytest.fail(f"{message}\n--- server ---\n{server.output()}", pytrace=False)

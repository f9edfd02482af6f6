"""Issue 13 item 8: slow and idle connections are closed, and many of them cannot keep a
normal request from being answered. Runs ``provisor serve`` (the real server process, with
its protocol and options) with short timeouts; no assertion on how fast anything happens."""

from __future__ import annotations

import base64
import json
import os
import resource
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.slow  # provisor serve processes

SAFETY = 60.0  # seconds a test waits for the server before it gives up (not a measurement)
FILES = 256  # the server's file descriptor limit in test_many_slow_connections


@dataclass
class Served:
    host: str
    port: int
    process: subprocess.Popen[bytes]
    authorization: bytes  # the initial admin's Basic credentials

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def connect(self) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=SAFETY)


def _limit_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILES, FILES))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    env = dict(os.environ)  # PROVISOR_* as tests/conftest.py leaves them (cheap hashing)
    env.update(
        PROVISOR_HTTP_HEADER_TIMEOUT_SECONDS="1",
        PROVISOR_HTTP_BODY_GRACE_SECONDS="1",
        PROVISOR_HTTP_BODY_MIN_BYTES_PER_SECOND="1000",
        PROVISOR_HTTP_KEEP_ALIVE_SECONDS="1",
        PROVISOR_HTTP_MAX_CONNECTIONS="100",
    )
    log = (tmp_path / "serve.log").open("w")
    command = [sys.executable, "-m", "provisor", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--data-dir", str(tmp_path), "--workers", "1", "--no-jobs"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        preexec_fn=_limit_files,
    )
    live = Served("127.0.0.1", port, process, b"")
    deadline = time.monotonic() + SAFETY
    while True:
        try:
            if httpx.get(live.url + "/health").status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert process.poll() is None, (tmp_path / "serve.log").read_text()
        assert time.monotonic() < deadline, "provisor serve did not start"
        time.sleep(0.2)
    admin = json.loads((tmp_path / "initial-admin.json").read_text())
    secret = f"{admin['client_id']}:{admin['client_secret']}".encode()
    live.authorization = b"Basic " + base64.b64encode(secret)
    try:
        yield live
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


def closed_by_server(sock: socket.socket) -> bool:
    """Wait (at most SAFETY seconds) for the server to close; whether it did."""
    sock.settimeout(SAFETY)
    try:
        while sock.recv(65536):
            pass  # a response, if the server sent one before closing
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def trickle(sock: socket.socket, pieces: Iterator[bytes], pause: float) -> bool:
    """Send pieces slowly until the server closes the connection; whether it did."""
    deadline = time.monotonic() + SAFETY
    for piece in pieces:
        if time.monotonic() > deadline:
            return False
        readable, _, _ = select.select([sock], [], [], pause)
        if readable and not sock.recv(65536, socket.MSG_PEEK):
            return True
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            return True
    return False


def forever(piece: bytes) -> Iterator[bytes]:
    while True:
        yield piece


def test_a_connection_that_sends_nothing_is_closed(served: Served) -> None:
    with served.connect() as sock:
        assert closed_by_server(sock)


def test_trickled_headers_are_cut_off(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        assert trickle(sock, forever(b"X-Slow: 1\r\n"), pause=0.2)


def test_a_trickled_body_is_cut_off(served: Served) -> None:
    with served.connect() as sock:
        # An authorised request whose handler waits for the whole body.
        head = b"POST /scim/Users HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
        auth = b"Authorization: " + served.authorization + b"\r\n"
        sock.sendall(head + auth + b"Content-Type: application/scim+json\r\n\r\n")
        assert trickle(sock, forever(b"a"), pause=0.2)


def test_an_idle_keep_alive_connection_is_closed(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert closed_by_server(sock)


def test_a_normal_request_is_answered_despite_many_slow_connections(served: Served) -> None:
    slow = []
    try:
        for _ in range(FILES + 50):  # more than the server has file descriptors
            sock = served.connect()
            sock.sendall(b"GET /health HTTP/1.1\r\n")  # and never the rest
            slow.append(sock)
        response = httpx.get(served.url + "/health", timeout=SAFETY)
        assert response.status_code == 200
    finally:
        for sock in slow:
            sock.close()
    assert served.process.poll() is None

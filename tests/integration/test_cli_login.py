"""``provisor login``, ``logout`` and ``whoami``: profiles, and the errors a user meets."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from tests.conftest import CLI, free_port


def _anonymous(cli: CLI) -> CLI:
    """The same command with no credentials in the environment: only profiles."""
    env = {
        k: v
        for k, v in cli.env.items()
        if k not in ("PROVISOR_SERVER", "PROVISOR_CLIENT_ID", "PROVISOR_CLIENT_SECRET")
    }
    return CLI(server=cli.server, cwd=cli.cwd, env=env)


def _credentials(cli: CLI) -> Path:
    client_id, secret = cli.server.admin
    path = cli.cwd / "admin.json"
    path.write_text(json.dumps({"client_id": client_id, "client_secret": secret}))
    return path


def test_login_saves_a_private_profile_the_commands_use(cli: CLI) -> None:
    user = _anonymous(cli)
    missing = user.invoke("whoami", check=False)
    assert missing.returncode == 1
    assert "provisor login" in missing.stderr and "PROVISOR_SERVER" in missing.stderr

    done = user.invoke("login", cli.server.url, "--credentials-file", str(_credentials(cli)))
    assert "initial-admin" in done.stdout
    profiles = cli.cwd / ".config" / "profiles.json"
    assert stat.S_IMODE(profiles.stat().st_mode) == 0o600
    assert stat.S_IMODE(profiles.parent.stat().st_mode) == 0o700
    me = json.loads(user.run("whoami", "--json").stdout)  # another process, same profile
    assert me["name"] == "initial-admin" and me["server"] == cli.server.url

    user.invoke("logout")
    assert user.invoke("whoami", check=False).returncode == 1


def test_login_reads_the_secret_from_a_file_or_standard_input(cli: CLI) -> None:
    user = _anonymous(cli)
    client_id, secret = cli.server.admin
    secret_file = cli.cwd / "secret"
    secret_file.write_text(secret + "\n")
    user.invoke(
        "login",
        cli.server.url,
        "--client-id",
        client_id,
        "--client-secret-file",
        str(secret_file),
        "--profile",
        "lab",
    )
    user.invoke("login", cli.server.url, "--client-id", client_id, stdin=secret + "\n")
    assert json.loads(user.invoke("whoami", "--json", "--profile", "lab").stdout)["clientId"] == (
        client_id
    )
    assert json.loads(user.invoke("whoami", "--json").stdout)["clientId"] == client_id
    unknown = user.invoke("whoami", "--profile", "prod", check=False)
    assert unknown.returncode == 1 and "No profile 'prod'" in unknown.stderr


def test_a_wrong_secret_is_refused_and_nothing_is_saved(cli: CLI) -> None:
    user = _anonymous(cli)
    client_id, _ = cli.server.admin
    refused = user.invoke(
        "login", cli.server.url, "--client-id", client_id, stdin="wrong\n", check=False
    )
    assert refused.returncode == 1
    assert "Login refused" in refused.stderr and "Traceback" not in refused.stderr
    assert not (cli.cwd / ".config" / "profiles.json").exists()


def test_an_unreachable_server_is_one_readable_line(cli: CLI) -> None:
    env = dict(cli.env, PROVISOR_SERVER=f"http://127.0.0.1:{free_port()}")
    down = CLI(server=cli.server, cwd=cli.cwd, env=env).run("whoami", check=False)
    assert down.returncode == 1
    assert "Cannot reach the provisor server" in down.stderr
    assert "Traceback" not in down.stderr


def test_a_profiles_file_others_can_read_is_refused(cli: CLI) -> None:
    user = _anonymous(cli)
    user.invoke("login", cli.server.url, "--credentials-file", str(_credentials(cli)))
    profiles = cli.cwd / ".config" / "profiles.json"
    profiles.chmod(0o644)
    refused = user.invoke("whoami", check=False)
    assert refused.returncode == 1 and "chmod 600" in refused.stderr


def test_environment_credentials_take_precedence(cli: CLI) -> None:
    wrong = dict(cli.env, PROVISOR_CLIENT_SECRET="not-the-secret")
    refused = CLI(server=cli.server, cwd=cli.cwd, env=wrong).invoke("whoami", check=False)
    assert refused.returncode == 1 and "PROVISOR_CLIENT_ID" in refused.stderr

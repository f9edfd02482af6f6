"""What the example harness reads from Markdown, and the bash it runs (no server)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.docs.examples import Example, commands, examples, script

DOCUMENT = """# A document

```sh
echo one
```

<!-- not run: needs a second server -->

```bash
provisor serve --port 9000
```

```python
print("not an example")
```

<!-- setup:
mkdir -p data
-->

```console
$ curl -fsS http://127.0.0.1:8000/health \\
    -o health.json
{"status": "ok"}
$ false   # exit 1
```

```http
POST /scim/Users HTTP/1.1
Host: 127.0.0.1:8000
Authorization: Bearer $TOKEN
Content-Type: application/scim+json

{"userName": "bjensen"}
```
"""


def _examples(tmp_path: Path) -> list[Example]:
    (tmp_path / "doc.md").write_text(DOCUMENT)
    return examples(tmp_path, Path("doc.md"))


def test_blocks_setup_and_exclusions_in_document_order(tmp_path: Path) -> None:
    found = _examples(tmp_path)
    assert [(e.line, e.language, e.excluded) for e in found] == [
        (3, "sh", None),
        (9, "bash", "needs a second server"),
        (17, "setup", None),
        (21, "console", None),
        (28, "http", None),
    ]
    assert found[2].source.strip() == "mkdir -p data"


def test_console_runs_prompted_lines_and_their_continuations(tmp_path: Path) -> None:
    console = _examples(tmp_path)[3]
    text = commands(console, "127.0.0.1:5555")
    assert "curl -fsS http://127.0.0.1:5555/health \\\n    -o health.json" in text
    assert '{"status"' not in text


def test_http_becomes_a_failing_curl_with_session_variables(tmp_path: Path) -> None:
    text = commands(_examples(tmp_path)[4], "127.0.0.1:5555")
    assert text.startswith("curl -fsS -X POST")
    assert '-H "Authorization: Bearer $TOKEN"' in text
    assert "Host:" not in text
    assert " http://127.0.0.1:5555/scim/Users --data-binary @-" in text
    assert text.endswith('{"userName": "bjensen"}\nHTTP_BODY')


def _bash(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    example = Example(path=Path("doc.md"), line=1, language="sh", source=text)
    (tmp_path / "run.sh").write_text(script([example], "127.0.0.1:5555"))
    return subprocess.run(
        ["bash", str(tmp_path / "run.sh")], capture_output=True, text=True, check=False
    )


def test_expected_exit_status_is_required(tmp_path: Path) -> None:
    passed = _bash("sh -c 'exit 3'   # exit 3\necho after", tmp_path)
    assert passed.stdout.endswith("after\n@@example 1\n")
    failed = _bash("true   # exit 2\necho after", tmp_path)
    assert failed.returncode == 1
    assert "expected exit 2, got 0" in failed.stderr
    assert "after" not in failed.stdout


def test_a_failing_command_stops_the_session(tmp_path: Path) -> None:
    done = _bash("false\necho after", tmp_path)
    assert done.returncode == 1
    assert done.stdout == "@@example 0\n"

"""Every `rongtuk` command shown in the operations and performance docs and the README exists, as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.deploy.cli_commands import assert_cli_accepts

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "docs" / name for name in ("operations.md", "performance.md", "performance-history.md")] + [
    ROOT / "README.md"
]


def commands(text: str) -> list[list[str]]:
    """`rongtuk ...` command lines from fenced blocks (also after `podman run ... IMAGE`) and inline code."""
    found: list[list[str]] = []
    for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", text, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            if not line.lstrip().startswith(("rongtuk ", "podman run ")):
                continue
            words = shlex.split(line, comments=True)
            if words[:2] == ["podman", "run"] and "rongtuk" in words:
                found.append(words[words.index("rongtuk") :])
            elif words[:1] == ["rongtuk"]:
                found.append(words)
    inline = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    found += [shlex.split(span) for span in re.findall(r"`(rongtuk [^`]+)`", inline)]
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_documented_commands_exist(doc: Path) -> None:
    found = [c for c in commands(doc.read_text(encoding="utf-8")) if "--help" not in c]
    assert found
    for command in found:
        # `--format bpmn|mermaid|json` shows the choices: try the first.
        assert_cli_accepts([word.split("|")[0] for word in command])


def test_a_missing_command_or_option_is_caught() -> None:
    for wrong in (["rongtuk", "db", "downgrade"], ["rongtuk", "worker", "--nope"], ["rongtuk", "db"]):
        with pytest.raises(AssertionError):
            assert_cli_accepts(wrong)

"""The container recipe, checked as far as a machine without a container engine allows.

deploy/Containerfile is parsed, the build context it sees is reproduced from .dockerignore, the wheel its build
stage makes is built from that context (offline: no dependencies, the venv's setuptools) and inspected, and
every `rongtuk` command the recipe names must exist in the CLI.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.deploy.cli_commands import assert_cli_accepts

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "deploy" / "Containerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in (raw.strip() for raw in joined.splitlines())
        if line
    ]


def ignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\*\*/?|\*|\?)", pattern.strip("/"))
    tokens = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(tokens.get(p, re.escape(p)) for p in parts) + r"\Z")


def ignored(relative: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent directories decides."""
    prefixes = ["/".join(relative.split("/")[: i + 1]) for i in range(relative.count("/") + 1)]
    decision = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _pattern_regex(pattern.removeprefix("!"))
        if any(regex.match(prefix) for prefix in prefixes):
            decision = not negated
    return decision


def build_context(target: Path) -> Path:
    """Copy what `docker build .` would send (the repository less .dockerignore) into ``target``."""
    patterns = ignore_patterns()
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT).as_posix()
        if path.is_file() and not ignored(relative, patterns):
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / relative)
    return target


def test_ignore_matcher_follows_docker_rules() -> None:
    patterns = ["tests", "**/__pycache__", "*.egg-info", "docs", "!docs/keep.md"]
    assert ignored("tests/unit/test_x.py", patterns)
    assert ignored("api/routes/__pycache__/x.pyc", patterns)
    assert ignored("rongtuk.egg-info/PKG-INFO", patterns)
    assert ignored("docs/process.md", patterns) and not ignored("docs/keep.md", patterns)
    assert not ignored("api/tests_helpers.py", patterns) and not ignored("worker.py", patterns)


def test_the_recipe_has_two_stages_a_non_root_user_and_the_cli_as_entrypoint() -> None:
    steps = instructions(CONTAINERFILE.read_text())
    froms = [args for op, args in steps if op == "FROM"]
    assert len(froms) == 2 and froms[0].endswith(" AS build")
    user = [args for op, args in steps if op == "USER"]
    assert user and user[-1] not in ("root", "0")
    entrypoint = [args for op, args in steps if op == "ENTRYPOINT"]
    assert entrypoint == ['["rongtuk"]']
    assert 'rongtuk = "cli.main:app"' in (ROOT / "pyproject.toml").read_text()


def test_every_copy_source_is_in_the_build_context() -> None:
    patterns = ignore_patterns()
    steps = instructions(CONTAINERFILE.read_text())
    copies = [shlex.split(args) for op, args in steps if op == "COPY"]
    assert copies
    for words in copies:
        if any(w.startswith("--from=") for w in words):
            continue  # from the build stage, not the context
        for source in [w for w in words if not w.startswith("--")][:-1]:
            assert (ROOT / source).exists(), f"COPY source {source} does not exist"
            if source != ".":
                assert not ignored(source, patterns), f"COPY source {source} is excluded by .dockerignore"
    # Secrets and bulky trees stay out of the context.
    for path in (".env", ".venv/bin/python", ".git/HEAD", "data/rongtuk.db", "tests/conftest.py"):
        assert ignored(path, patterns), path


def test_commands_named_in_the_recipe_exist() -> None:
    text = CONTAINERFILE.read_text()
    steps = instructions(text)
    cmd = [args for op, args in steps if op == "CMD"]
    commands = [["rongtuk", *shlex.split(cmd[-1].replace('"', "").strip("[]").replace(",", " "))]]
    commands += [shlex.split(m) for m in re.findall(r"^#\s+(rongtuk [^\n]*?)(?:\s{2,}.*)?$", text, re.MULTILINE)]
    assert len(commands) >= 4, commands
    for command in commands:
        assert_cli_accepts(command)


@pytest.mark.timeout(300)
def test_the_build_stage_wheel_holds_every_package_and_data_file(tmp_path: Path) -> None:
    context = build_context(tmp_path / "context")
    assert not (context / "tests").exists() and not (context / ".venv").exists()
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("rongtuk-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name not in ("tests", "bench")}
    missing = sorted(f"{pkg}/__init__.py" for pkg in packages if f"{pkg}/__init__.py" not in names)
    assert not missing, f"packages left out of the image: {missing} (pyproject.toml packages.find include)"
    assert "worker.py" in names
    for data in ("config/sla.yaml", "config/agencies.yaml", "store/migrations/env.py"):
        assert data in names, data
    migrations = {p.name for p in (ROOT / "store" / "migrations" / "versions").glob("*.py")}
    assert migrations and {f"store/migrations/versions/{m}" for m in migrations} <= names

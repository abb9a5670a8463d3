"""Does the `rongtuk` CLI accept a command line? Resolved and parsed by the CLI's own parser, never run."""

from __future__ import annotations

from typing import Any

import typer

from cli.main import app

# Commands the lead is building at the same time (issue 7); the docs name them already. Once they exist they
# are checked like every other command.
BEING_BUILT = {("db", "rebuild"), ("replay",)}


def assert_cli_accepts(argv: list[str]) -> None:
    """Fail unless ``argv`` (starting with "rongtuk") names an existing command with options it accepts."""
    assert argv[0] == "rongtuk", argv
    # Typer's command objects (its own copy of click in recent versions): a group has ``commands``.
    command: Any = typer.main.get_command(app)
    path: list[str] = []
    rest = argv[1:]
    while hasattr(command, "commands") and rest and not rest[0].startswith("-"):
        sub = command.commands.get(rest[0])
        if sub is None:
            assert (*path, rest[0]) in BEING_BUILT, f"`{' '.join(argv)}`: no command {' '.join([*path, rest[0]])!r}"
            return
        path.append(rest.pop(0))
        command = sub
    # A group runs by itself only if its callback says so (``rongtuk screen --json``).
    runnable = not hasattr(command, "commands") or getattr(command, "invoke_without_command", False)
    assert runnable, f"`{' '.join(argv)}` names a group, not a command"
    try:
        command.make_context(" ".join(path), list(rest))
    except Exception as exc:  # the parser's UsageError family
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        raise AssertionError(f"`{' '.join(argv)}`: {message}") from None

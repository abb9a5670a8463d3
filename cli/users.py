"""``rongtuk users``: staff accounts in the embedded identity store (not needed with OpenID Connect)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated

import typer

from api.accounts import AccountError, DemoUser, add_account, new_password, reset_password, set_account_active
from api.auth import StaffRole
from config.settings import get_settings
from store.db import Database, open_database

app = typer.Typer(help="Staff accounts (sign-in with user name and password).", no_args_is_help=True)

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input instead of generating one")
]


def _password(from_stdin: bool) -> tuple[str, bool]:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    return new_password(), True


def _run(work: Callable[[Database], Awaitable[None]]) -> None:
    async def main() -> None:
        db = open_database(get_settings())
        try:
            await work(db)
        finally:
            await db.dispose()

    try:
        asyncio.run(main())
    except AccountError as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command("add")
def add(
    username: str,
    role: Annotated[StaffRole, typer.Option(help="The staff role")],
    agency: Annotated[str | None, typer.Option(help="Agency code (agency staff and heads only)")] = None,
    unit: Annotated[str | None, typer.Option(help="Unit within the agency")] = None,
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create an account; without --password-stdin a random password is printed once."""
    password, generated = _password(password_stdin)
    _run(
        lambda db: add_account(
            db, username=username, role=role, password=password, agency=agency, unit=unit, display_name=name
        )
    )
    typer.echo(f"added {username.strip().lower()} ({role.value})")
    if generated:
        typer.echo(f"password: {password}  (shown once; change it with `rongtuk users reset-password`)")


@app.command("disable")
def disable(username: str) -> None:
    """Disable an account: it can no longer sign in and its sessions end."""
    _run(lambda db: set_account_active(db, username=username, active=False))
    typer.echo(f"disabled {username}")


@app.command("enable")
def enable(username: str) -> None:
    """Enable a disabled account again."""
    _run(lambda db: set_account_active(db, username=username, active=True))
    typer.echo(f"enabled {username}")


@app.command("reset-password")
def reset(username: str, password_stdin: PasswordStdin = False) -> None:
    """Set a new password (random unless --password-stdin) and end the account's sessions."""
    password, generated = _password(password_stdin)
    _run(lambda db: reset_password(db, username=username, password=password))
    typer.echo(f"password reset for {username}")
    if generated:
        typer.echo(f"password: {password}  (shown once)")


def print_demo_users(environment: str) -> None:
    """For `rongtuk dev`: create the demo accounts missing so far and print their passwords once."""
    from api.accounts import ensure_demo_users

    if environment == "prod":
        typer.echo("demo users are not created in prod; add accounts with `rongtuk users add`", err=True)
        return

    async def main() -> list[tuple[DemoUser, str]]:
        db = open_database(get_settings())
        try:
            return list(await ensure_demo_users(db))
        finally:
            await db.dispose()

    created = asyncio.run(main())
    if not created:
        typer.echo("demo users: created earlier (passwords were shown then; `rongtuk users reset-password NAME`)")
        return
    typer.echo("\nDemo users (passwords shown this once):")
    for demo, password in created:
        typer.echo(f"  {demo.username:<16} {password}  {demo.role.value}{' ' + demo.agency if demo.agency else ''}")

"""``rongtuk db archive`` and ``rongtuk db restore-archive``: ended cases out of the read model into a records
archive, and back (store/archive.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from config.settings import get_settings

BANGKOK = ZoneInfo("Asia/Bangkok")


def register(db_app: typer.Typer) -> None:
    @db_app.command("archive")
    def archive_command(
        ended_before: Annotated[
            datetime, typer.Option(formats=["%Y-%m-%d"], help="Cases whose last step came before this day (Bangkok)")
        ],
        to: Annotated[Path, typer.Option(help="The folder the archive and its manifest are written to")],
        delete: Annotated[
            bool, typer.Option("--delete", help="Then delete the archived cases from the read model")
        ] = False,
        batch: Annotated[int, typer.Option(help="Cases a batch", min=1, max=5000)] = 200,
    ) -> None:
        """Write the cases that ended before a day to an archive file (read back before anything else); with
        --delete, then remove them from the read model. Cases whose workflow still runs are kept."""
        from alembic.script import ScriptDirectory
        from temporalio.service import RPCError

        from attachments.storage import storage_from_settings
        from config.temporal import connect
        from sla.policy import load_policy
        from store.archive import ArchiveError, check_cutoff, delete_archived, files_dir, write_archive
        from store.db import is_database_unavailable, open_database
        from store.migrate import alembic_config

        settings = get_settings()
        cutoff = datetime.combine(ended_before.date(), time(0), tzinfo=BANGKOK)
        try:
            check_cutoff(cutoff, load_policy(settings.sla_policy_file), datetime.now(UTC))
        except ArchiveError as exc:
            typer.echo(str(exc), err=True)
            _exit(2)
        revision = ScriptDirectory.from_config(alembic_config(settings.database_url)).get_current_head() or ""

        async def run() -> int:
            db = open_database(settings)
            try:
                try:
                    client = await connect(settings)
                except RuntimeError:  # "Failed client connect"
                    address = settings.temporal_address
                    typer.echo(f"Temporal at {address} did not answer: nothing was archived", err=True)
                    return 1
                storage = storage_from_settings(settings)
                report = await write_archive(
                    db, client, out_dir=to, cutoff=cutoff, revision=revision, storage=storage, batch=batch
                )
                typer.echo(f"wrote {report.path}: {len(report.cases)} case(s), sha256 {report.sha256}")
                for name, count in sorted(report.rows.items()):
                    typer.echo(f"  {name}: {count} row(s)")
                typer.echo(f"  attachment files: {len(report.files)} copied to {files_dir(report.path)}")
                for key in report.files_missing:
                    typer.echo(f"attachment file {key} was not in the storage (or not as recorded)", err=True)
                if report.running:
                    typer.echo(f"kept {len(report.running)} case(s) whose workflow still runs", err=True)
                if delete and report.cases:
                    done = await delete_archived(db, report.path, storage=storage, batch=batch)
                    typer.echo(
                        f"deleted {done.deleted} case(s) from the read model and {done.files_deleted} attachment "
                        "file(s) no other case refers to"
                    )
                    if done.changed:
                        typer.echo(f"kept {len(done.changed)} case(s) that changed while archiving", err=True)
                    for key in done.files_failed:
                        typer.echo(f"attachment file {key}: the storage did not delete it; delete it later", err=True)
                    return 1 if done.files_failed else 0
                return 0
            except ArchiveError as exc:
                typer.echo(f"{exc}", err=True)
                return 1
            except RPCError as exc:  # Temporal could not say whether a case's workflow still runs
                status = exc.status.name
                typer.echo(f"Temporal did not answer ({status}): no archive was left, nothing was deleted", err=True)
                return 1
            except OSError as exc:
                typer.echo(f"cannot write the archive in {to}: {exc.strerror or exc}; nothing was deleted", err=True)
                return 1
            except Exception as exc:
                if not is_database_unavailable(exc):
                    raise
                typer.echo(f"the database did not answer ({type(exc).__name__}); try again later", err=True)
                return 1
            finally:
                await db.dispose()

        _exit(asyncio.run(run()))

    @db_app.command("restore-archive")
    def restore_command(
        archive: Annotated[Path, typer.Argument(help="An archive file written by rongtuk db archive")],
    ) -> None:
        """Put an archive's cases back into the read model (a case already there is left as it is)."""
        from attachments.storage import StorageError, storage_from_settings
        from store.archive import ArchiveError, restore_archive
        from store.db import open_database

        settings = get_settings()

        async def run() -> int:
            db = open_database(settings)
            try:
                restored, present, refused = await restore_archive(db, archive, storage=storage_from_settings(settings))
            except ArchiveError as exc:
                typer.echo(f"{exc}", err=True)
                return 1
            except StorageError as exc:
                typer.echo(f"the attachment storage refused a file ({exc}); run the command again", err=True)
                return 1
            finally:
                await db.dispose()
            typer.echo(f"restored {restored} case(s); {present} were there already")
            for case_id in refused:
                typer.echo(f"NOT RESTORED {case_id}: a row of it conflicts with a newer row", err=True)
            return 1 if refused else 0

        _exit(asyncio.run(run()))


def _exit(code: int) -> None:
    from cli.main import _exit_skipping_finalisation

    _exit_skipping_finalisation(code)

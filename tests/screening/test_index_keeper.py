"""The API's duplicate index over time (screening.duplicates.IndexKeeper): one build for the first screenings,
top-ups after, the full rebuild in the background while screenings go on, and no vectorising on the event
loop, against the real read model."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

import screening.duplicates as duplicates
from screening.duplicates import DuplicateIndex, IndexKeeper
from store import models
from store.db import Database
from tests.delivery.conftest import make_case


async def _get(keeper: IndexKeeper, db: Database, now: datetime) -> DuplicateIndex:
    async with db.session() as session:
        return await keeper.get(session, now=now)


def _ids(index: DuplicateIndex) -> set[str]:
    return {case.case_id for case in index.cases}


async def test_the_first_screenings_wait_for_one_build_and_later_ones_add_only_new_cases(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    full_builds: list[datetime] = []
    real = duplicates.load_index

    async def counted(session: Any, **kwargs: Any) -> DuplicateIndex:
        if kwargs.get("received_since") is None:
            full_builds.append(kwargs["now"])
        return await real(session, **kwargs)

    monkeypatch.setattr(duplicates, "load_index", counted)
    keeper = IndexKeeper(db, window_days=90, rebuild_after=timedelta(minutes=30))
    first = await make_case(db, channels=["web"])
    now = datetime.now(UTC)

    indexes = await asyncio.gather(*(_get(keeper, db, now) for _ in range(3)))
    assert len(full_builds) == 1 and all(index is indexes[0] for index in indexes)  # one build, shared
    assert first.case_id in _ids(indexes[0])

    second = await make_case(db, channels=["web"])
    later = await _get(keeper, db, now + timedelta(minutes=1))
    assert later is indexes[0] and second.case_id in _ids(later)  # topped up, not rebuilt
    assert len(full_builds) == 1 and keeper.rebuilding is None  # a rebuild is not due yet


async def test_a_due_rebuild_runs_in_the_background_and_closed_cases_leave_the_index(db: Database) -> None:
    keeper = IndexKeeper(db, window_days=1, rebuild_after=timedelta(minutes=30))
    case = await make_case(db, channels=["web"])
    now = datetime.now(UTC)
    index = await _get(keeper, db, now)
    assert case.case_id in _ids(index)
    async with db.session() as s:  # the case is closed, and was received before the window
        await s.execute(
            update(models.Case)
            .where(models.Case.case_id == case.case_id)
            .values(status="closed", received_at=now - timedelta(days=10))
        )

    due = now + timedelta(minutes=31)
    same = await _get(keeper, db, due)
    assert same is index  # the screening did not wait for the rebuild
    rebuild = keeper.rebuilding
    assert rebuild is not None
    await rebuild
    assert keeper.index is not index and keeper.built_at == due and keeper.rebuilding is None
    assert keeper.index is not None and case.case_id not in _ids(keeper.index)


async def test_a_failed_rebuild_keeps_the_index_in_use(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    keeper = IndexKeeper(db, window_days=90, rebuild_after=timedelta(minutes=30))
    await make_case(db, channels=["web"])
    now = datetime.now(UTC)
    index = await _get(keeper, db, now)

    async def away(session: Any, **kwargs: Any) -> DuplicateIndex:
        if kwargs.get("received_since") is None:
            raise ConnectionError("the database is restarting")
        return index

    monkeypatch.setattr(duplicates, "load_index", away)
    await _get(keeper, db, now + timedelta(minutes=31))
    assert keeper.rebuilding is not None
    await keeper.rebuilding
    assert keeper.index is index and keeper.built_at == now and keeper.rebuilding is None


async def test_vectorising_runs_off_the_event_loop(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full build vectorises thousands of texts (0.3 ms each): on the event loop it stopped every request of
    the API process for the whole build, every 30 minutes."""
    threads: list[int] = []
    real = duplicates.vectorise

    def recorded(texts: list[str]) -> Any:
        threads.append(threading.get_ident())
        return real(texts)

    monkeypatch.setattr(duplicates, "vectorise", recorded)
    await make_case(db, channels=["web"])
    keeper = IndexKeeper(db, window_days=90, rebuild_after=timedelta(minutes=30))
    await _get(keeper, db, datetime.now(UTC))
    await make_case(db, channels=["web"])
    await _get(keeper, db, datetime.now(UTC) + timedelta(minutes=1))
    assert len(threads) == 2 and threading.get_ident() not in threads

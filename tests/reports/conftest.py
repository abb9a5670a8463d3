"""Seeded report data, once per session, in the suite's database (SQLite, or PostgreSQL by URL)."""

from __future__ import annotations

from datetime import date

import pytest

from reports.dimensions import Lookup, lookup
from reports.figures import Filters
from store.db import Database
from tests.reports.seed import FIRST_DAY, LAST_DAY, Seeded, seed_cases

# Other tests file cases now; the seed lives in 2023-2024, so reports over that range see only the seed.
RANGE = Filters(since=FIRST_DAY, until=LAST_DAY)


@pytest.fixture(scope="session")
async def seeded(db: Database) -> Seeded:
    async with db.sessions() as session:
        return await seed_cases(session, count=600)


@pytest.fixture(scope="session")
def lk() -> Lookup:
    return lookup()


def quarters() -> list[tuple[str, date, date]]:
    """(key, first day, last day) of every quarter the seed covers."""
    out = []
    for year in (2023, 2024):
        for q in range(4):
            first = date(year, 3 * q + 1, 1)
            last = date(year + (q == 3), (3 * q + 3) % 12 + 1, 1)
            out.append((f"{year}-Q{q + 1}", first, date.fromordinal(last.toordinal() - 1)))
    return out

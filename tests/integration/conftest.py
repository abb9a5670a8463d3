"""Cases these tests start on the dev server end with each test (their workers are gone by then)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from temporalio.service import RPCError

from tests.workflows.paths import STARTED


@pytest.fixture(autouse=True)
async def end_cases_afterwards() -> AsyncIterator[None]:
    yield
    for handle in STARTED:
        with contextlib.suppress(RPCError):
            await handle.terminate("test over")
    STARTED.clear()

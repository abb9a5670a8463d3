"""The start-up heap freeze (config/heap.py): what it freezes, what it leaves to the collector, who does it."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from config.heap import freeze_startup_heap
from config.settings import Settings
from tests.api.conftest import app_client


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """The test process's heap back in the collector's walks afterwards (the suite builds many apps)."""
    gc.unfreeze()
    yield
    gc.unfreeze()


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_freeze_collects_start_up_garbage_first_then_freezes_the_rest(unfrozen: None) -> None:
    kept, dropped = _Node(), _Node()
    dropped.other = _Node()
    dropped.other.other = dropped  # a cycle that only the collector can free
    gone = weakref.ref(dropped)
    del dropped

    frozen = freeze_startup_heap()

    assert gone() is None, "start-up's cyclic garbage is collected before the freeze, not frozen for good"
    assert frozen == gc.get_freeze_count() > 0
    assert not any(o is kept for o in gc.get_objects()), "what was alive is out of the collector's walks"
    # What the process allocates afterwards is collected as before.
    later = _Node()
    later.other = _Node()
    later.other.other = later
    after = weakref.ref(later)
    del later
    gc.collect()
    assert after() is None


@pytest.mark.parametrize(
    ("env", "gc_freeze", "freezes"),
    [("dev", None, True), ("test", None, False), ("test", True, True), ("dev", False, False)],
)
def test_processes_freeze_their_heap_except_in_tests(env: str, gc_freeze: bool | None, freezes: bool) -> None:
    assert Settings(env=env, gc_freeze=gc_freeze).freezes_heap is freezes


async def test_the_api_freezes_its_heap_at_the_end_of_start_up(settings: Settings, unfrozen: None) -> None:
    async with app_client(settings.model_copy(update={"gc_freeze": True})) as client:
        assert gc.get_freeze_count() > 0
        assert (await client.get("/healthz")).status_code == 200
    gc.unfreeze()
    async with app_client(settings):  # tests leave it off: one process builds many apps
        assert gc.get_freeze_count() == 0


@pytest.mark.parametrize("gc_freeze", [True, False])
def test_after_start_up_freezes_only_when_the_settings_say(gc_freeze: bool, unfrozen: None) -> None:
    from config.heap import after_start_up

    after_start_up(Settings(env="dev", gc_freeze=gc_freeze))
    assert (gc.get_freeze_count() > 0) is gc_freeze

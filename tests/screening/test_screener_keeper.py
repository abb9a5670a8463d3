"""The API's screening model: loaded once, and loaded again in the background when the saved model changes."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from config.settings import Settings
from screening.classifier import CategoryModel
from screening.service import Screener, ScreenerKeeper, model_path


def _save(model: CategoryModel, settings: Settings, *, bump: int) -> Path:
    path = model_path(settings)
    model.save(path)
    # Two saves within the file system's clock tick must still read as a change.
    stamp = path.stat().st_mtime_ns + bump * 1_000_000_000
    os.utime(path, ns=(stamp, stamp))
    return path


async def test_a_saved_model_replaces_the_keywords_model_without_a_restart(
    tmp_path: Path, small_model: CategoryModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path)
    keeper = ScreenerKeeper(settings, check_every=0.0)
    loads: list[int] = []
    real = Screener.from_settings

    def load(s: Settings) -> Screener:
        loads.append(threading.get_ident())
        return real(s)

    monkeypatch.setattr(Screener, "from_settings", staticmethod(load))
    try:
        first = await keeper.get()
        assert first.model_source == "keywords" and first.model_stamp is None
        assert await keeper.get() is first and len(loads) == 1, "nothing saved: nothing loaded again"

        path = _save(small_model, settings, bump=1)
        # The screening that notices answers with the model it has; the new one loads beside it.
        assert await keeper.get() is first
        await keeper.settled()
        second = await keeper.get()
        assert second.model_source == str(path) and second.model_stamp == path.stat().st_mtime_ns
        assert len(loads) == 2 and threading.get_ident() not in loads, "loaded in a thread, not on the loop"

        # A broken file (a copy cut short) keeps the model in use.
        path.write_bytes(b"not a pickle")
        os.utime(path, ns=(second.model_stamp + 2_000_000_000,) * 2)
        assert await keeper.get() is second
        await keeper.settled()
        assert await keeper.get() is second
    finally:
        await keeper.close()


async def test_the_file_is_looked_at_no_more_often_than_asked(tmp_path: Path, small_model: CategoryModel) -> None:
    settings = Settings(data_dir=tmp_path)
    keeper = ScreenerKeeper(settings, check_every=3600.0)
    try:
        first = await keeper.get()
        _save(small_model, settings, bump=1)
        assert await keeper.get() is first
        await keeper.settled()
        assert await keeper.get() is first, "not checked again within the hour"
    finally:
        await keeper.close()

"""`rongtuk dev` trains a screening model on a development machine's first start, and only then."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from cli.devserver import first_training
from config.settings import Settings
from screening.service import model_path


def test_it_trains_only_on_a_first_development_start_with_the_sample_at_hand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[dict[str, Any]] = []

    class Recorded:
        def __init__(self, cmd: list[str], **kwargs: Any) -> None:
            started.append({"cmd": cmd, **kwargs})

    monkeypatch.setattr(subprocess, "Popen", Recorded)
    sample = tmp_path / "traffy.csv"
    sample.write_text("ticket_id,type,organization,comment\n", encoding="utf-8")
    dev = Settings(env="dev", data_dir=tmp_path / "data", traffy_csv=sample)

    assert first_training(Settings(env="test", data_dir=tmp_path / "data", traffy_csv=sample), {}) is None
    assert first_training(dev.model_copy(update={"traffy_csv": tmp_path / "absent.csv"}), {}) is None
    assert started == []

    assert isinstance(first_training(dev, {"RONGTUK_DATA_DIR": "x"}), Recorded)
    assert started[0]["cmd"][-3:] == ["cli.main", "screen", "retrain"]
    assert started[0]["env"]["RONGTUK_DATA_DIR"] == "x" and started[0]["start_new_session"]
    assert started[0]["preexec_fn"] is not None, "at a low priority"
    assert (tmp_path / "data" / "screening-training.log").exists()

    model_path(dev).parent.mkdir(parents=True, exist_ok=True)
    model_path(dev).write_bytes(b"saved")
    assert first_training(dev, {}) is None and len(started) == 1, "a saved model: nothing to train"

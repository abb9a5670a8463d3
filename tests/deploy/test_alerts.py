"""deploy/prometheus/alerts.yml: well formed, and every metric it reads is one Rongtuk or its worker serves."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from api.routes.board import _ReadModelCollector
from cli.devserver import free_port
from config.settings import Settings
from config.temporal import worker_runtime
from intake.relay import Lag, LagCollector

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"

# Temporal SDK (core) worker metrics, served where RONGTUK_WORKER_METRICS_ADDRESS says; failure counters
# appear once something has failed.
SDK_METRICS = {
    "temporal_workflow_task_execution_failed",
    "temporal_activity_execution_failed",
    "temporal_local_activity_execution_failed",
    "temporal_workflow_task_schedule_to_start_latency_bucket",
    "temporal_sticky_cache_total_forced_eviction",
    "temporal_worker_task_slots_available",
}
# Named in the rules and docs before /metrics serves them (marked "(pending)" in the file): the lead adds
# rongtuk_stuck_cases (issue 7); rongtuk_notifications_pending is for the lead to add with the outbox.
PENDING = {"rongtuk_stuck_cases", "rongtuk_notifications_pending"}
PROMQL_WORDS = {"max", "sum", "by", "rate", "increase", "histogram_quantile", "absent", "or", "le", "without"}


def served_by_the_api() -> set[str]:
    collector = _ReadModelCollector({"stage1": 1}, {"DOPA": 1}, {"sla_breaches": 0, "escalations": 0})
    served = {sample.name for family in collector.collect() for sample in family.samples}
    return served | {sample.name for family in LagCollector(Lag(1, 2.0)).collect() for sample in family.samples}


def rules() -> list[dict[str, object]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_rule_is_complete_and_named_once() -> None:
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names)) >= 8
    for rule in rules():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule  # type: ignore[index]
        assert rule["annotations"]["summary"], rule  # type: ignore[index]
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", "0s"))), rule


def test_every_metric_in_the_rules_exists() -> None:
    known = served_by_the_api() | SDK_METRICS | PENDING | {"up"}
    assert {"rongtuk_sla_breaches_total", "rongtuk_overdue_tasks", "rongtuk_open_cases"} <= known
    for rule in rules():
        expr = re.sub(r'"[^"]*"|\[[^\]]*\]', "", str(rule["expr"]))  # drop label values and ranges
        expr = re.sub(r"\{[^}]*\}", "", expr)
        words = set(re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*", expr)) - PROMQL_WORDS
        metrics = {w for w in words if w.startswith(("rongtuk_", "temporal_")) or w == "up"}
        assert metrics, rule["alert"]
        assert metrics <= known, f"{rule['alert']}: unknown {sorted(metrics - known)}"
        assert words <= metrics | {"task_queue", "workflow_type", "activity_type", "agency", "instance"}, words


def test_worker_metrics_are_served_where_configured() -> None:
    assert worker_runtime(Settings(env="test")) is None
    address = f"127.0.0.1:{free_port()}"
    runtime = worker_runtime(Settings(env="test", worker_metrics_address=address))
    assert runtime is not None
    response = httpx.get(f"http://{address}/metrics", timeout=10)
    assert response.status_code == 200


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_accepts_the_rules_and_they_fire_as_specified() -> None:
    for args in (["check", "rules", str(RULES)], ["test", "rules", str(RULES.with_name("alerts_test.yml"))]):
        done = subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr

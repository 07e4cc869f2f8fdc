"""The soak benchmark stays runnable: a few seconds of its mixed traffic, swaps and collects on a small model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from serving_fixtures import small_base_model  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_soak_smoke_run_hurts_no_innocent_request(tmp_path, small_base_model):  # noqa: F811
    out = tmp_path / "soak.json"
    run = subprocess.run([sys.executable, "benchmarks/soak_bench.py", "--minutes", "0.15", "--clients", "3",
                          "--base-model", str(small_base_model), "--rss-bar", "1.0", "--json", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["innocent_ok"] > 0 and figures["innocent_failed"] == 0
    assert figures["innocent_in_warehouse_once"] == figures["innocent_ok"]
    assert figures["attack_server_errors"] == [] and figures["disconnected_logged"] == 0
    assert len(figures["swaps"]) == 2 and figures["production_at_end"] == "v1"
    kinds = {key.split(":")[0] for key in figures["attacks"]}
    assert {"invalid_json", "nested_300", "temperature_1e-45", "control_tokens", "feedback_unknown_id"} <= kinds
    assert "failed: 0 (goal 0)" in run.stdout

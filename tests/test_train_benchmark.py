"""The GPU throughput benchmark stays runnable where no GPU is: its tiny CPU shape, every configuration."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_train_throughput_benchmark_runs_plain_trl_and_our_recipes(tmp_path):
    out = tmp_path / "results.json"
    run = subprocess.run([sys.executable, "benchmarks/train_throughput.py", "--tiny", "--steps", "4", "--warmup", "1",
                          "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(out.read_text())
    assert [r["config"] for r in results["sft"]] == ["trl-default", "trl-same-flags", "ours"]
    assert [r["config"] for r in results["dpo"]] == ["dpo-trl-default", "dpo-trl-same-flags", "dpo-ours"]
    rates = [r["tok_per_s"] for r in results["sft"]] + [r["pairs_per_s"] for r in results["dpo"]]
    assert all(math.isfinite(rate) and rate > 0 for rate in rates), rates
    assert "vs trl-default" in run.stdout and "pairs/s" in run.stdout  # the ratios a reader compares
    assert "ours vs trl-same-flags: x" in run.stdout and "DPO ours vs trl-same-flags: x" in run.stdout

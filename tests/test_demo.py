"""A short `flywheel demo` end to end: the real server, Prefect flows and a training turn, two small weeks."""

from __future__ import annotations

import os
import shutil

import pytest
from net import free_port
from training_fixtures import recipe

pytest_plugins = ("training_fixtures",)

# What the demo sets in the environment for its flows and model server, set here first so that it is put back.
DEMO_ENV = {"FLYWHEEL_GATE__EVAL_SETS": "[]", "FLYWHEEL_GATE__SMOKE_PROMPT": "Hi", "FLYWHEEL_GATE__MAX_NEW_TOKENS": "32",
            "FLYWHEEL_SCRUB__ALLOW_LIST": "[]", "FLYWHEEL_SERVE__TORCH_THREADS": "1",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


@pytest.mark.slow
def test_a_short_demo_asks_week_two_only_unseen_paraphrases_and_reports_n_and_intervals(
        home, tmp_path, monkeypatch, embedded_base_model, prefect_server):
    from rich.console import Console

    from demo.domain import unseen_paraphrases
    from demo.run import gate_reasons, report_table, run_demo
    from flywheel.settings import load_settings

    for key, value in DEMO_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PREFECT_HOME", os.environ["PREFECT_HOME"])
    monkeypatch.setenv("FLYWHEEL_HOME", str(home))
    monkeypatch.setenv("FLYWHEEL_TRAIN__BASE_MODEL", str(embedded_base_model))
    monkeypatch.setenv("FLYWHEEL_SERVE__PORT", str(free_port()))
    monkeypatch.setenv("FLYWHEEL_CURATE__MIN_NEW_EXAMPLES", "1")
    monkeypatch.setenv("FLYWHEEL_TRAIN__CONFIG", str(recipe(tmp_path / "short.yaml", sft={"max_steps": 20},
                                                           dpo={"max_steps": 4})))
    shutil.copytree(embedded_base_model, home / "demo" / "models" / embedded_base_model.name)  # built already

    console = Console(record=True, width=200)
    result = run_demo(load_settings(), model="tiny", ui=False, conversations=30, console=console)

    assert result.week1.conversations == result.week2.conversations == 30
    unseen = {q for _, q in unseen_paraphrases()}
    assert not set(result.week1.asked) & set(result.week2.asked)  # no week-2 message repeats week 1
    assert all(any(q in text for q in unseen) for text in result.week2.asked), result.week2.asked
    assert len(result.before["unseen"]) == len(result.after["unseen"]) == len(unseen) >= 100
    assert result.turn["dataset_version"] == "v1" and result.turn["decision"] in ("promote", "reject")
    console.print(report_table(result))
    table = console.export_text()
    assert f"(n={len(unseen)}, " in table and "IN-DISTRIBUTION" in table and "unseen (never trained" in table
    assert "gate: general knowledge" in table
    assert f"n={result.week2.rated}," in table  # week 2's thumbs-down rate with its own n
    assert gate_reasons(result)[0].startswith("gate: heldout_accuracy")

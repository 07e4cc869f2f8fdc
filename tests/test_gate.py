"""The promotion gate: a better adapter is promoted, a deliberately worse one refused, failures change nothing."""

from __future__ import annotations

import json

import pytest
from net import judge_server
from training_fixtures import lora_adapter, recipe, train_settings
from typer.testing import CliRunner

from demo.dataset import write_domain_dataset
from flywheel.settings import GateSettings
from flywheel.warehouse import connect
from training import registry
from training.config import RecipeError
from training.evaluate import decide
from training.files import model_fingerprint

pytest_plugins = ("training_fixtures",)

REFERENCE = {"heldout_accuracy": 0.40, "regression_kept": 1.0, "preference_accuracy": 0.50, "heldout_loss": 1.0,
             "evalset:facts": 0.5, "evalset:facts:kept": 1.0}


def gate(**values) -> GateSettings:
    return GateSettings(**values)


def test_gate_promotes_only_a_clear_win_without_regressions():
    better = {**REFERENCE, "heldout_accuracy": 0.60}
    assert decide(better, REFERENCE, gate(margin=0.05)).promote
    assert not decide(better, REFERENCE, gate(margin=0.25)).promote
    assert not decide(REFERENCE, REFERENCE, gate()).promote
    regressed = {**better, "regression_kept": 0.90}
    decision = decide(regressed, REFERENCE, gate())
    assert not decision.promote
    assert any("regression: regression_kept" in r for r in decision.reasons)
    lost_a_fact = {**better, "evalset:facts:kept": 0.95, "evalset:facts": 0.6}  # more right, but one lost
    decision = decide(lost_a_fact, REFERENCE, gate())
    assert not decision.promote and any("regression: evalset:facts:kept" in r for r in decision.reasons)
    assert decide(lost_a_fact, REFERENCE, gate(regression_metrics=["regression_kept"])).promote
    within = {**better, "regression_kept": 0.99}
    assert decide(within, REFERENCE, gate()).promote
    lower_loss = {**REFERENCE, "heldout_loss": 0.8}
    assert decide(lower_loss, REFERENCE, gate(primary_metric="heldout_loss", margin=0.1)).promote
    assert decide({**REFERENCE, "evalset:facts": 0.7}, REFERENCE, gate(primary_metric="evalset:facts")).promote
    unmeasured = {**REFERENCE, "heldout_accuracy": float("nan")}
    decision = decide(unmeasured, REFERENCE, gate())
    assert not decision.promote and "not measurable" in decision.reasons[0]


def test_failed_training_is_recorded_and_leaves_production_untouched(home, small_model):
    from training.retrain import retrain

    settings = train_settings(home, small_model)
    adapter = lora_adapter(small_model, home / "trained")
    version = registry.register_adapter(settings, adapter, {"base_model": str(small_model),
                                                            "base_model_hash": model_fingerprint(small_model)})
    registry.set_status(settings, version, "production")
    data = write_domain_dataset(settings, "v1")
    for split in (data / "sft").glob("train"):  # a dataset version that lost its train split
        for f in split.iterdir():
            f.unlink()
        split.rmdir()
    (data / "sft" / "dataset_dict.json").write_text(json.dumps({"splits": ["eval"]}))
    with pytest.raises(RecipeError, match="no 'train' split"):
        retrain(settings, "v1")
    assert registry.production_version(settings) == version
    with connect(settings, read_only=True) as con:
        status, error = con.execute("SELECT status, error FROM training_runs").fetchone()
        adapters = con.execute("SELECT count(*) FROM adapters").fetchone()[0]
    assert status == "failed" and "train" in error
    assert adapters == 1


def test_unknown_dataset_version_is_a_clear_cli_error(home, small_model, monkeypatch):
    from flywheel.cli import app

    monkeypatch.setenv("FLYWHEEL_TRAIN__BASE_MODEL", str(small_model))
    result = CliRunner().invoke(app, ["train", "--dataset", "v42"])
    assert result.exit_code == 1
    assert "dataset v42 not found" in result.output


@pytest.mark.slow
def test_better_adapter_is_promoted_and_a_worse_one_refused(home, embedded_base_model, monkeypatch, artifacts_dir,
                                                           prefect_server):
    """Flow run on correct data -> promoted over the base; CLI run on corrupted data -> refused vs production."""
    from prefect.artifacts import Artifact

    from flows.retrain import retrain_flow
    from flywheel.cli import app

    monkeypatch.setenv("FLYWHEEL_TRAIN__BASE_MODEL", str(embedded_base_model))
    monkeypatch.setenv("FLYWHEEL_TRAIN__DEVICE", "cpu")
    # The tiny model loses one of its 27 golden answers on some seeds even on correct data (1 of 4 seeds
    # here, benchmarks/RESULTS.md); this test is about the gate, so it trains on one that keeps them all.
    settings = train_settings(home, embedded_base_model)
    monkeypatch.setenv("FLYWHEEL_TRAIN__CONFIG", str(recipe(home / "seed.yaml", seed=2)))
    write_domain_dataset(settings, "v1")
    write_domain_dataset(settings, "v2", corrupt=True)

    good = retrain_flow(dataset_version="v1", promote=True)
    assert good["decision"] == "promote", good["reasons"]
    assert good["candidate"]["sft_eval_loss"] < good["reference"]["sft_eval_loss"]
    assert good["candidate"]["task_accuracy"] >= good["reference"]["task_accuracy"]
    assert good["candidate"]["golden_accuracy"] == 1.0
    assert registry.production_version(settings) == good["adapter_version"] == "v1"
    report = Artifact.get("retrain-report")
    assert report is not None and "PROMOTE" in report.data and "data:image/png;base64" in report.data
    (artifacts_dir / "retrain-report-v1.md").write_text(open(good["report_path"]).read())

    result = CliRunner().invoke(app, ["train", "--dataset", "v2"])
    assert result.exit_code == 0, result.output
    assert "REJECT" in result.output
    assert registry.adapter_status(settings, "v2") == "rejected"
    assert registry.production_version(settings) == "v1"
    registry.validate_adapter(registry.adapter_path(settings, "v2"), embedded_base_model)
    with connect(settings, read_only=True) as con:
        rows = con.execute("SELECT adapter_version, against, decision, reasons FROM evaluations "
                           "ORDER BY created_at").fetchall()
        runs = con.execute("SELECT status FROM training_runs").fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [("v1", None, "promote"), ("v2", "v1", "reject")]
    assert any("regression" in reason for reason in json.loads(rows[1][3])), rows[1][3]
    assert runs == [("succeeded",), ("succeeded",)]

    again = CliRunner().invoke(app, ["eval", "--adapter", "v1", "--against", "base"])
    assert again.exit_code == 0, again.output
    assert "PROMOTE" in again.output and "task_accuracy" in again.output
    with connect(settings, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM evaluations WHERE adapter_version = 'v1'").fetchone()[0] == 2


def test_llm_judge_grades_heldout_answers_of_both_models_and_survives_ungraded_ones(home, small_model):
    """The optional judge sees each held-out answer with its reference; a reply with no grade is left out."""
    from training.config import load_config
    from training.evaluate import evaluate

    settings = train_settings(home, small_model)
    data = write_domain_dataset(settings, "v1")
    candidate = lora_adapter(small_model, home / "candidate")

    def grade(prompt: str) -> str:
        return "I cannot tell" if "Reference answer: The Plus plan costs" in prompt else "4"

    with judge_server(grade) as (url, asked):
        config = load_config().model_copy(update={"eval": load_config().eval.model_copy(update={"judge_url": url})})
        evaluation = evaluate(settings, config, small_model, candidate, None, data)
    heldout = [row for row in evaluation.answers if row["set"] == "heldout"]
    assert len(asked) == 2 * len(heldout)  # every held-out answer, candidate and reference, once
    assert all("Reference answer: " in p and "Question: " in p and "Answer: " in p for p in asked)
    ungraded = sum("Reference answer: The Plus plan costs" in p for p in asked)
    assert 0 < ungraded < len(asked)
    assert evaluation.candidate["judge_score"] == evaluation.reference["judge_score"] == 0.75  # grade 4 of 1-5

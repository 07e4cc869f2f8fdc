"""Training throughput: plain TRL configurations vs our recipes, same machine, same run, random-init weights.

Shapes (no weights needed): Qwen2.5-0.5B and Llama-3-8B from their config objects, LoRA r16 all-linear,
bf16, sequence length 2048 (DESIGN.md anchors). ``--tiny`` runs a tiny Llama on CPU in fp32 so the
script itself stays tested where no GPU is. Configurations, each on the same synthetic chat data
(lengths drawn from a long-tailed distribution, like support conversations):

- ``trl-default``: ``SFTConfig`` defaults (padded batches, TRL's gradient checkpointing) — the 2x bar;
- ``trl-packing-flex``: ``packing=True`` + ``attn_implementation="flex_attention"`` (+ Liger where it
  imports) — TRL's best correct configuration (GPU only; SDPA with packed rows would attend across samples);
- ``trl-same-flags``: plain TRL with the two switches ours differs by, set as ours sets them: packing
  (best-fit, padding-free) and no gradient checkpointing, ours' attention and Liger: what a user who knew
  the flags would run; the fair ratio for the rest of our recipe;
- ``ours``: ``training.sft.build_sft_trainer`` with the shape's YAML (padding-free packing, varlen /
  flex attention, Liger, no needless checkpointing);
- DPO ``trl-default`` (``DPOConfig`` defaults: reference forward every step, gradient checkpointing),
  ``trl-same-flags`` (``precompute_ref_log_probs=True``, no gradient checkpointing) vs ``ours``:
  ``training.dpo.build_dpo_trainer`` with the shape's YAML (one batched reference pass before training,
  no checkpointing, Liger).

Throughput is real (non-pad) tokens per second, or pairs per second, measured from the step after
``--warmup`` steps (compilation excluded) to the last; DPO also prints the whole wall time, ours
including its reference pass. Prints each figure and its ratio to the baseline.

    .venv/bin/python benchmarks/train_throughput.py --tiny            # CPU smoke run, ~15 s
    python benchmarks/train_throughput.py --shape qwen2.5-0.5b --steps 30
    python benchmarks/train_throughput.py --shape llama3-8b --steps 20
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHAPES: dict[str, dict[str, Any]] = {
    "tiny": {"family": "llama", "config": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                               num_attention_heads=4, num_key_value_heads=2), "seq": 256,
             "batch": 4, "recipe": "tiny.yaml"},
    "qwen2.5-0.5b": {"family": "qwen2", "config": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                                                       num_attention_heads=14, num_key_value_heads=2,
                                                       vocab_size=151936, tie_word_embeddings=True),
                     "seq": 2048, "batch": 8, "recipe": "qwen2.5-0.5b.yaml"},
    "llama3-8b": {"family": "llama", "config": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                                    num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                                                    rope_theta=500000.0), "seq": 2048, "batch": 2,
                  "recipe": "llama3-8b.yaml"},
}
WORDS = ("notes plan price refund export offline storage password team seats sync device history support "
         "account import upload payment settings billing share link email month days free plus").split()


def synthetic_dataset(out: Path, rows: int, max_tokens: int, seed: int) -> Path:
    """A dataset version dir (``sft/`` and ``dpo/`` DatasetDicts) of chats with long-tailed lengths."""
    from datasets import Dataset, DatasetDict

    rng = random.Random(seed)

    def text(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(max(1, n)))

    sft, dpo = [], []
    for i in range(rows):
        length = min(int(rng.lognormvariate(4.5, 0.8)), max_tokens // 2)  # words, median ~90
        prompt = [{"role": "user", "content": text(length // 3)}]
        sft.append({"id": f"s{i}", "messages": prompt + [{"role": "assistant", "content": text(length)}]})
        dpo.append({"id": f"p{i}", "prompt": prompt, "chosen": [{"role": "assistant", "content": text(length // 2)}],
                    "rejected": [{"role": "assistant", "content": text(length // 2)}]})
    for name, data in (("sft", sft), ("dpo", dpo)):
        DatasetDict({"train": Dataset.from_list(data), "eval": Dataset.from_list(data[:8])}).save_to_disk(
            str(out / name))
    return out


def random_model(shape: str, out: Path, dtype: Any) -> Path:
    """Random-init weights of the shape, saved with the embedded tokenizer (its ids fit any vocab here)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    from demo.model import demo_tokenizer

    spec = SHAPES[shape]
    tokenizer = demo_tokenizer()
    config_cls, model_cls = (Qwen2Config, Qwen2ForCausalLM) if spec["family"] == "qwen2" else (LlamaConfig,
                                                                                              LlamaForCausalLM)
    kwargs = {"vocab_size": len(tokenizer), **spec["config"], "pad_token_id": tokenizer.pad_token_id,
              "eos_token_id": tokenizer.eos_token_id, "bos_token_id": None}
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = model_cls(config_cls(**kwargs)).to(dtype)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    del model
    return out


class Meter:
    """A TrainerCallback measuring wall time and tokens (or rows) between step ``warmup`` and the end."""

    def __init__(self, warmup: int):
        from transformers import TrainerCallback

        meter = self

        class Callback(TrainerCallback):
            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                if state.global_step == warmup:
                    meter._sync()
                    meter.start, meter.start_tokens = time.perf_counter(), state.num_input_tokens_seen

            def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                meter._sync()
                meter.end, meter.end_tokens = time.perf_counter(), state.num_input_tokens_seen

        self.callback = Callback()
        self.start = self.end = 0.0
        self.start_tokens = self.end_tokens = 0

    @staticmethod
    def _sync() -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()

    @property
    def seconds(self) -> float:
        return self.end - self.start


def peak_gib() -> float:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")


def measure(name: str, trainer: Any, warmup: int, pairs_per_step: int | None = None) -> dict[str, Any]:
    """Train, timing from step ``warmup`` to the end: tokens/s (SFT), or pairs/s when ``pairs_per_step``."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    meter = Meter(warmup)
    trainer.add_callback(meter.callback)
    started = time.perf_counter()
    trainer.train()
    result: dict[str, Any] = {"config": name, "wall_s": time.perf_counter() - started, "peak_gib": peak_gib()}
    if pairs_per_step is None:
        result["tok_per_s"] = (meter.end_tokens - meter.start_tokens) / meter.seconds
    else:
        result["pairs_per_s"] = (trainer.state.global_step - warmup) * pairs_per_step / meter.seconds
    del trainer
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return result


def plain_trl(kind: str, model_dir: Path, data: Path, out: Path, spec: dict, steps: int, bf16: bool,
              packing: bool = False, attn: str = "sdpa", liger: bool = False, same_flags: bool = False) -> Any:
    """Plain TRL: its config's defaults (gradient checkpointing on, no reference precompute, padded batches)
    except the shape's batch size and length, and the packing/attention/Liger switches given; ``same_flags``
    also turns off gradient checkpointing and, for DPO, precomputes the reference log-probs, as ours does."""
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    from training.common import read_split

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16 if bf16 else torch.float32,
                                                 attn_implementation=attn)
    common = dict(output_dir=str(out), max_steps=steps, per_device_train_batch_size=spec["batch"],
                  max_length=spec["seq"], bf16=bf16, use_cpu=not torch.cuda.is_available(), use_liger_kernel=liger,
                  report_to=[], save_strategy="no", logging_steps=1, disable_tqdm=True)
    if same_flags:
        common["gradient_checkpointing"] = False
    lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if kind == "sft":
        args = SFTConfig(**common, packing=packing, include_num_input_tokens_seen="non_padding")
        rows = read_split(data, "sft", "train").select_columns(["messages"])
        return SFTTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer, peft_config=lora)
    pairs = read_split(data, "dpo", "train").select_columns(["prompt", "chosen", "rejected"])
    precompute = {"precompute_ref_log_probs": True} if same_flags else {}
    return DPOTrainer(model=model, args=DPOConfig(**common, **precompute), train_dataset=pairs,
                      processing_class=tokenizer, peft_config=lora)


def ours(kind: str, model_dir: Path, data: Path, out: Path, spec: dict, steps: int, attn: str, liger: bool) -> Any:
    """Our recipe unchanged (training/sft.py or dpo.py + the shape's YAML), pointed at the random model;
    only the batch shape, step count, LoRA rank (r16, as the baselines) and what this GPU has are set here."""
    from transformers import ProgressCallback

    from training.config import CONFIGS_DIR, load_config
    from training.dpo import build_dpo_trainer
    from training.sft import build_sft_trainer

    config = load_config(CONFIGS_DIR / spec["recipe"])
    shape = {"max_steps": steps, "batch_size": spec["batch"], "max_length": spec["seq"],
             "gradient_accumulation_steps": 1, "use_liger_kernel": liger, "save_steps": steps + 1}
    config = config.model_copy(update={
        "attn_implementation": attn, "lora": config.lora.model_copy(update={"r": 16, "alpha": 32}),
        "sft": config.sft.model_copy(update=shape), "dpo": config.dpo.model_copy(update=shape)})
    if kind == "dpo":
        trainer = build_dpo_trainer(config, model_dir, data, out, sft_adapter=None)
    else:
        trainer = build_sft_trainer(config, model_dir, data, out)
        trainer.args.include_num_input_tokens_seen = "non_padding"
    trainer.remove_callback(ProgressCallback)  # the recipes show a progress bar; the baselines do not
    return trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default=None,
                        help="default: qwen2.5-0.5b on a GPU, tiny without one")
    parser.add_argument("--tiny", action="store_true", help="same as --shape tiny (CPU smoke run of this script)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    import torch

    from training.config import importable

    cuda = torch.cuda.is_available()
    shape = "tiny" if args.tiny else args.shape or ("qwen2.5-0.5b" if cuda else "tiny")
    if not cuda and shape != "tiny":
        sys.exit(f"--shape {shape} needs a CUDA GPU (none visible); run with --tiny on CPU")
    if not cuda:
        torch.set_num_threads(1)
    spec, bf16 = SHAPES[shape], cuda
    liger = cuda and importable("liger_kernel")
    ours_attn = "flash_attention_2" if cuda and importable("flash_attn") else ("flex_attention" if cuda else "sdpa")
    with tempfile.TemporaryDirectory(prefix="train-bench-") as tmp:
        work = Path(tmp)
        model_dir = random_model(shape, work / "model", torch.bfloat16 if bf16 else torch.float32)
        data = synthetic_dataset(work / "data", args.rows if cuda else 64, spec["seq"], seed=0)
        sft_runs = [("trl-default", lambda: plain_trl("sft", model_dir, data, work / "a", spec, args.steps, bf16))]
        if cuda:
            sft_runs.append(("trl-packing-flex", lambda: plain_trl("sft", model_dir, data, work / "b", spec, args.steps,
                                                                   bf16, True, "flex_attention", liger)))
        sft_runs.append(("trl-same-flags", lambda: plain_trl("sft", model_dir, data, work / "s", spec, args.steps,
                                                             bf16, True, ours_attn, liger, same_flags=True)))
        sft_runs.append(("ours", lambda: ours("sft", model_dir, data, work / "c", spec, args.steps, ours_attn, liger)))
        results = [measure(name, build(), args.warmup) for name, build in sft_runs]
        dpo = [measure("dpo-trl-default", plain_trl("dpo", model_dir, data, work / "d", spec, args.steps, bf16),
                       args.warmup, spec["batch"]),
               measure("dpo-trl-same-flags", plain_trl("dpo", model_dir, data, work / "f", spec, args.steps, bf16,
                                                       attn=ours_attn, liger=liger, same_flags=True),
                       args.warmup, spec["batch"]),
               measure("dpo-ours", ours("dpo", model_dir, data, work / "e", spec, args.steps, ours_attn, liger),
                       args.warmup, spec["batch"])]
    device = torch.cuda.get_device_name() if cuda else "CPU (1 thread)"
    print(f"\nshape {shape}, seq {spec['seq']}, batch {spec['batch']}, {args.steps - args.warmup} timed steps, "
          f"{device}; ours: attn={ours_attn}, liger={liger}")
    base = results[0]["tok_per_s"]
    for r in results:
        print(f"SFT {r['config']:<18} {r['tok_per_s']:>12,.0f} tok/s  x{r['tok_per_s'] / base:5.2f} vs trl-default"
              f"  peak {r['peak_gib']:.1f} GiB")
    named = {r["config"]: r for r in results}
    for baseline in ("trl-packing-flex", "trl-same-flags"):
        if baseline in named:
            print(f"ours vs {baseline}: x{results[-1]['tok_per_s'] / named[baseline]['tok_per_s']:.2f}")
    print(f"DPO ours vs trl-same-flags: x{dpo[-1]['pairs_per_s'] / dpo[1]['pairs_per_s']:.2f} pairs/s, "
          f"x{dpo[1]['wall_s'] / dpo[-1]['wall_s']:.2f} wall")
    for r in dpo:
        print(f"DPO {r['config']:<18} {r['pairs_per_s']:>8.2f} pairs/s  x{r['pairs_per_s'] / dpo[0]['pairs_per_s']:5.2f}"
              f"  wall {r['wall_s']:.1f} s (x{dpo[0]['wall_s'] / r['wall_s']:.2f}, ours incl. its reference pass)"
              f"  peak {r['peak_gib']:.1f} GiB")
    if args.json:
        args.json.write_text(json.dumps({"shape": shape, "device": device, "sft": results, "dpo": dpo}, indent=2))


if __name__ == "__main__":
    main()

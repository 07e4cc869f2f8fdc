"""One turn of the loop on a real pretrained chat model: SFT -> DPO -> gate, timed, with what the gate saw.

The data is the demo's product facts as a dataset version (``demo.dataset``: two questions per fact to
train on, the third held out) and, as eval-set files, the facts and a general-knowledge set (regression: what
the base model knows must stay known). It prints the gate's metrics for the candidate and the base model,
the decision, each stage's wall time, and the share of the dev paraphrases (never trained on) answered right.

    python benchmarks/real_model_turn.py --model smollm2                      # CPU: SmolLM2-135M-Instruct
    python benchmarks/real_model_turn.py --model /models/Qwen2.5-0.5B-Instruct --config qwen2.5-0.5b.yaml
    python benchmarks/real_model_turn.py --model smollm2 --sft-steps 2 --dpo-steps 1   # rehearsal, ~2 min

``--model`` is a local HF chat model directory or a packaged model's name (``smollm2``); nothing downloads.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2", help="HF chat model directory, or smollm2")
    parser.add_argument("--config", default="smollm2-135m.yaml", help="recipe YAML under training/configs, or a path")
    parser.add_argument("--sft-steps", type=int, default=None, help="override the recipe's SFT steps")
    parser.add_argument("--dpo-steps", type=int, default=None, help="override the recipe's DPO steps")
    parser.add_argument("--home", type=Path, default=None, help="FLYWHEEL_HOME (default: a temporary one; "
                        "packaged models are prepared into it)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    import torch
    import yaml

    from demo.dataset import write_domain_dataset
    from demo.domain import FACTS, SYSTEM_PROMPT, is_correct, write_fact_eval_set
    from flywheel.settings import Settings
    from training.base_model import ensure_base_model
    from training.config import CONFIGS_DIR
    from training.retrain import retrain

    home = args.home or Path(tempfile.mkdtemp(prefix="real-model-turn-"))
    eval_sets = [write_fact_eval_set(home / "eval-sets" / "lumen-facts.jsonl"),
                 ROOT / "demo" / "data" / "general-knowledge.jsonl"]
    settings = Settings(home=home, train={"base_model": args.model, "device": "auto"},
                        gate={"eval_sets": eval_sets, "batch_size": 32 if torch.cuda.is_available() else 16})
    settings.ensure_dirs()
    started = time.monotonic()
    base = ensure_base_model(settings)
    prepared_s = time.monotonic() - started
    settings = settings.model_copy(update={"train": settings.train.model_copy(update={"base_model": base})})
    config_path = Path(args.config) if Path(args.config).is_file() else CONFIGS_DIR / args.config
    recipe = yaml.safe_load(config_path.read_text())
    recipe["model"] = None  # the model given here, not the YAML's path
    from training.config import importable

    if recipe.get("attn_implementation") == "flash_attention_2" and not importable("flash_attn"):
        recipe["attn_implementation"] = "flex_attention" if torch.cuda.is_available() else "sdpa"
    for stage in ("sft", "dpo"):
        if recipe[stage].get("use_liger_kernel") and not (torch.cuda.is_available() and importable("liger_kernel")):
            recipe[stage]["use_liger_kernel"] = False
    for stage, steps in (("sft", args.sft_steps), ("dpo", args.dpo_steps)):
        if steps is not None:
            recipe[stage]["max_steps"] = steps
    config = home / "recipe.yaml"
    config.write_text(yaml.safe_dump(recipe))
    write_domain_dataset(settings, "v1")

    started = time.monotonic()
    result = retrain(settings, "v1", config)
    turn_s = time.monotonic() - started
    stages = {}
    for stage in ("sft", "dpo"):
        state = result.run_dir / stage / "checkpoints"
        logs = sorted(state.glob("checkpoint-*/trainer_state.json"))
        if logs:
            history = json.loads(logs[-1].read_text())["log_history"]
            stages[stage] = next((row.get("train_runtime") for row in history if "train_runtime" in row), None)
    dev = _dev_accuracy(settings, base, result, FACTS, SYSTEM_PROMPT, is_correct)

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)"
    print(f"\nmodel {base} on {device}; recipe {config_path.name}; prepared in {prepared_s:.0f} s; "
          f"turn (SFT + DPO + gate) {turn_s:.0f} s")
    print(f"decision: {result.decision.upper()}")
    for reason in result.reasons:
        print(f"  - {reason}")
    for metric in sorted(result.candidate):
        print(f"{metric:<36} candidate {result.candidate[metric]:8.3f}   {result.reference_name} "
              f"{result.reference.get(metric, float('nan')):8.3f}")
    print(f"dev paraphrases (never trained on) right: base {dev['base']}/{dev['n']}, candidate {dev['candidate']}/"
          f"{dev['n']}")
    if args.json:
        args.json.write_text(json.dumps({"model": str(base), "device": device, "turn_s": turn_s,
                                         "prepared_s": prepared_s, "decision": result.decision,
                                         "reasons": result.reasons, "candidate": result.candidate,
                                         "reference": result.reference, "dev": dev}, indent=2))


def _dev_accuracy(settings, base, result, facts, system_prompt, is_correct) -> dict:
    """Greedy answers to the demo's dev paraphrases, base vs the new adapter."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.evaluate import Scorer

    tokenizer = AutoTokenizer.from_pretrained(base)
    cuda = torch.cuda.is_available()
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16 if cuda else torch.float32)
    model = PeftModel.from_pretrained(model.to("cuda") if cuda else model, str(result.run_dir / "dpo" / "adapter")
                                      if (result.run_dir / "dpo" / "adapter").is_dir()
                                      else str(result.run_dir / "sft" / "adapter"))
    model.eval()
    probes = [(fact, q) for fact in facts for q in fact.dev]
    conversations = [[{"role": "system", "content": system_prompt}, {"role": "user", "content": q}] for _, q in probes]
    scorer = Scorer(model, tokenizer, settings.gate.batch_size)
    with model.disable_adapter():
        before = scorer.generate(conversations, 40)
    after = scorer.generate(conversations, 40)
    return {"n": len(probes), "base": sum(is_correct(f, a) for (f, _), a in zip(probes, before, strict=True)),
            "candidate": sum(is_correct(f, a) for (f, _), a in zip(probes, after, strict=True))}


if __name__ == "__main__":
    main()

"""Learning vs forgetting of a recipe across seeds: SFT + DPO on one dataset version, evaluated against the base.

For each SFT learning rate and seed it trains the tiny recipe (``training/configs/tiny.yaml``, only the seed
and ``sft.learning_rate`` changed), evaluates the result against the base model exactly as the gate does
(``training.evaluate.evaluate``, with the demo's facts as an eval-set file) and prints: the facts the base
answered right that are kept (the regression check), held-out accuracy (the gate's primary metric) and the
gate's decision; then, per learning rate, on how many seeds every known fact was kept. The first ``--lr`` is the baseline (the previous default, 3e-3), in the same run.

    .venv/bin/python benchmarks/recipe_seeds.py                      # the all-correct domain set
    .venv/bin/python benchmarks/recipe_seeds.py --dataset .flywheel/demo/datasets/v1   # after `make demo`

About 45 s per (learning rate, seed) on one CPU thread. Training is deterministic, so a rerun prints
the same table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=None,
                        help="dataset version directory; default: the domain set the gate test trains on")
    parser.add_argument("--seeds", default="1234,1,2,3")
    parser.add_argument("--lr", default="0.003,0.002", help="SFT learning rates; the first is the baseline")
    args = parser.parse_args()

    from demo.dataset import write_domain_dataset
    from demo.domain import write_fact_eval_set
    from demo.model import build_demo_model
    from flywheel.settings import Settings, load_settings
    from training.config import load_config
    from training.dpo import train_dpo
    from training.evaluate import evaluate
    from training.sft import train_sft

    base = build_demo_model(load_settings())  # the demo's tiny model, cached under FLYWHEEL_HOME
    home = Path(tempfile.mkdtemp(prefix="recipe-seeds-"))
    settings = Settings(home=home, train={"base_model": base, "device": "cpu"},
                        gate={"eval_sets": [write_fact_eval_set(home / "lumen-facts.jsonl")]})
    settings.ensure_dirs()
    data = args.dataset or write_domain_dataset(settings, "v1")
    seeds = [int(s) for s in args.seeds.split(",")]
    summary = []
    print(f"dataset {data}\n{'sft lr':>8} {'seed':>5}  kept   heldout  gate")
    for lr in (float(x) for x in args.lr.split(",")):
        kept_all, runs = 0, []
        for seed in seeds:
            config = load_config()
            config = config.model_copy(update={"seed": seed,
                                               "sft": config.sft.model_copy(update={"learning_rate": lr})})
            run = home / f"lr{lr}-seed{seed}"
            sft = train_sft(config, base, data, run / "sft", device="cpu")
            dpo = train_dpo(config, base, data, run / "dpo", sft.adapter_dir, device="cpu")
            result = evaluate(settings, config, base, dpo.adapter_dir, None, data)
            m = result.candidate
            kept_all += m["evalset:lumen-facts:kept"] == 1.0
            runs.append(m)
            print(f"{lr:>8.0e} {seed:>5}  {m['evalset:lumen-facts:kept']:.3f}  {m['heldout_accuracy']:.3f}    "
                  f"{result.gate.decision}", flush=True)
        summary.append((lr, kept_all, runs))
    print()
    for lr, kept_all, runs in summary:
        heldout = [m["heldout_accuracy"] for m in runs]
        print(f"sft lr {lr:.0e}: every known fact kept on {kept_all} of {len(runs)} seeds; "
              f"held-out accuracy {min(heldout):.3f}-{max(heldout):.3f}")


if __name__ == "__main__":
    main()

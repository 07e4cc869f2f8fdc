"""DPO recipe (TRL ``DPOTrainer``) on top of the SFT adapter, after torchtune's one-file recipes.

    python -m training.dpo --dataset DIR --sft-adapter DIR --output DIR [--config YAML] [--base-model DIR]
    accelerate launch --config_file infra/accelerate/ddp.yaml -m training.dpo ...

- The policy is the base model with the SFT adapter, trainable. The reference is the same model object:
  TRL keeps a frozen copy of the *adapter* ("ref", a few MB) and switches to it for reference
  log-probs — no second copy of the model. With no SFT adapter (``--sft-adapter`` omitted) a fresh LoRA
  is trained and the reference is the model with the adapter disabled.
- ``precompute_ref_log_probs``: reference log-probs are computed once before training, so each step
  runs the policy only. ``beta`` and ``loss_type`` come from the YAML.
- Resumable and launchable like the SFT recipe.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from training.common import (
    StageResult,
    example_columns,
    leave_process_group,
    read_split,
    recipe_arguments,
    recipe_inputs,
    stage_arguments,
    start_model,
    train_stage,
)
from training.config import RecipeConfig


def train_dpo(config: RecipeConfig, base_model: Path, dataset_dir: Path, output_dir: Path,
              sft_adapter: Path | None, device: str = "auto", callbacks: list[Any] | None = None) -> StageResult:
    """Preference-tune on ``dataset_dir/dpo`` train split; saves ``output_dir/adapter``."""
    trainer = build_dpo_trainer(config, base_model, dataset_dir, output_dir, sft_adapter, device, callbacks)
    result = train_stage(trainer, output_dir)
    _drop_reference_adapter(result.adapter_dir)
    return result


def build_dpo_trainer(config: RecipeConfig, base_model: Path, dataset_dir: Path, output_dir: Path,
                      sft_adapter: Path | None, device: str = "auto", callbacks: list[Any] | None = None) -> Any:
    """The configured ``DPOTrainer`` (policy, reference, pairs, arguments), not yet trained."""
    from trl import DPOConfig, DPOTrainer

    model, tokenizer, peft_config, rt = start_model(config, base_model, sft_adapter, device)
    pairs = example_columns(read_split(dataset_dir, "dpo", "train"), ["prompt", "chosen", "rejected"])
    args = DPOConfig(
        **stage_arguments(config.dpo, config, rt, output_dir / "checkpoints"),
        beta=config.dpo.beta,
        loss_type=[config.dpo.loss_type],
        precompute_ref_log_probs=config.dpo.precompute_ref_log_probs,
        precompute_ref_batch_size=config.dpo.precompute_ref_batch_size,
        dataset_num_proc=None,
    )
    return DPOTrainer(model=model, ref_model=None, args=args, train_dataset=pairs, processing_class=tokenizer,
                      peft_config=peft_config, callbacks=callbacks)


def _drop_reference_adapter(adapter_dir: Path) -> None:
    """``save_model`` also writes TRL's frozen "ref" adapter in a subfolder; the registry wants one adapter."""
    import shutil

    shutil.rmtree(adapter_dir / "ref", ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = recipe_arguments(__doc__.split("\n\n")[0])
    parser.add_argument("--sft-adapter", type=Path, default=None, help="adapter to start from (the SFT output)")
    args = parser.parse_args(argv)
    settings, config, base = recipe_inputs(args)
    result = train_dpo(config, base, args.dataset, args.output, args.sft_adapter, settings.train.device)
    print(f"adapter: {result.adapter_dir} (world size {os.environ.get('WORLD_SIZE', '1')})")
    leave_process_group()


if __name__ == "__main__":
    main()

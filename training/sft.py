"""LoRA SFT recipe (TRL ``SFTTrainer`` + PEFT), after torchtune's one-file recipes.

    python -m training.sft --dataset DIR --output DIR [--config YAML] [--base-model DIR] [--init-adapter DIR]
    accelerate launch --config_file infra/accelerate/ddp.yaml -m training.sft --dataset ... --output ...

- Chat template from the base model's tokenizer; loss on assistant tokens only, located from the template's
  own rendering (``training.chat``), so templates without ``{% generation %}`` markers (Qwen2.5, SmolLM2,
  Llama 3) train on the answers only too.
- Packing without cross-sample attention: best-fit packing is padding-free, so each packed row carries
  ``position_ids`` that restart at every sample and no attention mask. With FlashAttention that is the
  varlen kernel; with SDPA/eager transformers derives a block-diagonal mask from the restarts
  (``find_packed_sequence_indices``). tests/test_training.py checks that a packed row gives the same
  logits as its samples one by one.
- ``start_from: production`` continues the production adapter (``--init-adapter``); else a fresh LoRA.
- Replay: ``replay_share`` of the rows come from earlier dataset versions (``--replay DIR``, repeatable).
- Resumable: checkpoints every ``save_steps`` under ``OUTPUT/checkpoints``; a rerun resumes from the last.
- Runs unchanged under ``accelerate launch`` (DDP; FSDP / DeepSpeed configs in ``infra/accelerate``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from training.chat import tokenize_chat
from training.common import (
    StageResult,
    leave_process_group,
    read_split,
    recipe_arguments,
    recipe_inputs,
    stage_arguments,
    start_model,
    train_stage,
    with_replay,
)
from training.config import RecipeConfig


def train_sft(config: RecipeConfig, base_model: Path, dataset_dir: Path, output_dir: Path,
              init_adapter: Path | None = None, replay_dirs: list[Path] | None = None, device: str = "auto",
              callbacks: list[Any] | None = None) -> StageResult:
    """Train (or continue) a LoRA adapter on ``dataset_dir/sft`` train split; saves ``output_dir/adapter``."""
    trainer = build_sft_trainer(config, base_model, dataset_dir, output_dir, init_adapter, replay_dirs, device,
                                callbacks)
    return train_stage(trainer, output_dir)


def build_sft_trainer(config: RecipeConfig, base_model: Path, dataset_dir: Path, output_dir: Path,
                      init_adapter: Path | None = None, replay_dirs: list[Path] | None = None, device: str = "auto",
                      callbacks: list[Any] | None = None) -> Any:
    """The configured ``SFTTrainer`` (model, LoRA, data, arguments), not yet trained."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    model, tokenizer, peft_config, rt = start_model(config, base_model, init_adapter, device)

    rows = read_split(dataset_dir, "sft", "train")
    rows = with_replay(rows, "sft", replay_dirs or [], config.replay_share, config.seed)
    # Tokenized here with the assistant mask (TRL builds the labels from ``assistant_masks``); a row's tool
    # schemas go to the chat template as TRL would pass them.
    tools = rows["tools"] if "tools" in rows.column_names else [None] * len(rows)
    rows = Dataset.from_list([tokenize_chat(tokenizer, messages, tools=row_tools)
                              for messages, row_tools in zip(rows["messages"], tools, strict=True)])
    args = SFTConfig(
        **stage_arguments(config.sft, config, rt, output_dir / "checkpoints"),
        packing=config.sft.packing,
        packing_strategy="bfd",  # padding-free: position_ids restart per sample, no attention across samples
        dataset_num_proc=None,
    )
    return SFTTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer,
                      peft_config=peft_config, callbacks=callbacks)


def main(argv: list[str] | None = None) -> None:
    parser = recipe_arguments(__doc__.split("\n\n")[0])
    parser.add_argument("--init-adapter", type=Path, default=None, help="continue this adapter instead of a fresh one")
    parser.add_argument("--replay", type=Path, action="append", default=[], help="earlier dataset version (repeat)")
    args = parser.parse_args(argv)
    settings, config, base = recipe_inputs(args)
    result = train_sft(config, base, args.dataset, args.output, args.init_adapter, args.replay, settings.train.device)
    print(f"adapter: {result.adapter_dir} (world size {os.environ.get('WORLD_SIZE', '1')})")
    leave_process_group()


if __name__ == "__main__":
    main()

"""What the SFT and DPO recipes share: loading the base model, LoRA, dataset versions and splits, replay,
checkpoints."""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flywheel.records import content_key
from flywheel.settings import Settings, load_settings
from flywheel.versions import is_version, version_number
from training.base_model import ensure_base_model
from training.config import RecipeConfig, RecipeError, Runtime, StageSection, load_config, runtime


def resolve_base_model(settings: Settings, config: RecipeConfig) -> Path:
    """The recipe's ``model`` if set, else ``settings.train.base_model``, else the embedded tiny model."""
    if config.model is not None:
        if not (Path(config.model) / "config.json").is_file():
            raise RecipeError(f"model: {config.model} is not a local HF model directory (no config.json)")
        return Path(config.model)
    return ensure_base_model(settings)


def recipe_arguments(description: str) -> argparse.ArgumentParser:
    """The command-line arguments every recipe takes (``python -m training.sft|dpo``, ``accelerate launch``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--dataset", type=Path, required=True, help="dataset version directory (datasets/vN)")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--config", type=Path, default=None, help="recipe YAML (default: training/configs/tiny.yaml)")
    parser.add_argument("--base-model", type=Path, default=None, help="HF model directory (default: embedded model)")
    return parser


def recipe_inputs(args: argparse.Namespace) -> tuple[Settings, RecipeConfig, Path]:
    """Settings, the recipe config and the base model directory for a recipe run from the command line."""
    settings = load_settings()
    config = load_config(args.config, settings)
    return settings, config, args.base_model or resolve_base_model(settings, config)


def load_model(base_model: Path, config: RecipeConfig, rt: Runtime) -> tuple[Any, Any]:
    """Base model and tokenizer in the runtime's precision (4-bit weights for QLoRA)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if rt.bf16 else torch.float32,
                              "attn_implementation": config.attn_implementation}
    if config.quantization == "4bit":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16,
            bnb_4bit_use_double_quant=True)
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise RecipeError(f"{base_model}: the tokenizer has no chat template; use an instruct/chat checkpoint")
    model = AutoModelForCausalLM.from_pretrained(base_model, **kwargs)
    # Without a cache the model derives a block-diagonal mask from position_ids, so packed rows never
    # attend across samples (transformers' find_packed_sequence_indices); with one it would not.
    model.config.use_cache = False
    return model, tokenizer


def start_model(config: RecipeConfig, base_model: Path, adapter: Path | None, device: str) -> tuple[Any, Any, Any, Runtime]:
    """What a stage trains, for SFT and DPO alike: (model, tokenizer, LoRA config for TRL to add, runtime). With
    ``adapter`` the model continues that adapter (trainable) and the LoRA config is None; else a fresh LoRA."""
    rt = runtime(config, device)
    model, tokenizer = load_model(base_model, config, rt)
    if adapter is not None:
        return with_adapter(model, adapter), tokenizer, None, rt
    return model, tokenizer, lora_config(config), rt


@dataclass
class StageResult:
    adapter_dir: Path
    log_history: list[dict[str, Any]]


def train_stage(trainer: Any, output_dir: Path) -> StageResult:
    """Train (resuming from the last checkpoint under ``output_dir/checkpoints``), save ``output_dir/adapter``."""
    trainer.train(resume_from_checkpoint=last_checkpoint(output_dir / "checkpoints"))
    adapter_dir = output_dir / "adapter"
    trainer.save_model(str(adapter_dir))
    return StageResult(adapter_dir, trainer.state.log_history)


def leave_process_group() -> None:
    """Under ``accelerate launch``, leave the process group once the adapter is saved. Left to interpreter exit, a
    rank's gloo threads can abort it after the work is done ("terminate called without an active exception",
    exit -6: seen once in a loaded test run), and torch warns that the group leaks."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def lora_config(config: RecipeConfig) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
                      target_modules=config.lora.target_modules, task_type="CAUSAL_LM")


def with_adapter(model: Any, adapter_dir: Path) -> Any:
    """Wrap the base model with an existing adapter, trainable (continual training, DPO after SFT)."""
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True)


def dataset_dir(settings: Settings, version: str) -> Path:
    """The directory of dataset version ``version``; RecipeError when the name or the directory is wrong."""
    if not is_version(version):
        raise RecipeError(f"dataset version {version!r} is not of the form vN (v1, v2, ...)")
    path = settings.datasets_dir / version
    if not (path / "sft").is_dir():
        raise RecipeError(f"dataset {version} not found at {path}; run `flywheel curate` or list {settings.datasets_dir}")
    return path


def earlier_versions(settings: Settings, version: str) -> list[Path]:
    """Dataset versions before ``version``, oldest first (the replay pool, the regression set's sources)."""
    number = version_number(version)
    earlier = [p for p in settings.datasets_dir.glob("v*")
               if 0 < version_number(p.name) < number and (p / "sft").is_dir()]
    return sorted(earlier, key=lambda p: version_number(p.name))


def read_split(dataset_dir: Path, kind: str, split: str) -> Any:
    """One split of a dataset version (``vN/<kind>/`` saved with ``save_to_disk``)."""
    from datasets import load_from_disk

    path = Path(dataset_dir) / kind
    if not path.is_dir():
        raise RecipeError(f"{dataset_dir}: no {kind}/ directory; is this a dataset version written by `flywheel curate`?")
    splits = load_from_disk(str(path))
    if split not in splits:
        raise RecipeError(f"{path}: no {split!r} split (has {list(splits)})")
    return splits[split]


def write_dataset_version(settings: Settings, version: str, sft: list[dict], dpo: list[dict]) -> Path:
    """Write rows (each with a ``split`` of train / eval) as ``datasets/<version>/`` in the layout curation
    writes and ``read_split`` reads: for tests, benchmarks and examples that bring their own rows."""
    from datasets import Dataset, DatasetDict

    out = settings.datasets_dir / version
    for name, rows in (("sft", sft), ("dpo", dpo)):
        splits = DatasetDict({
            split: Dataset.from_list([{k: v for k, v in r.items() if k != "split"} for r in rows if r["split"] == split])
            for split in ("train", "eval")
        })
        splits.save_to_disk(str(out / name))
        for split, ds in splits.items():
            ds.to_parquet(str(out / f"{name}-{split}.parquet"))
    return out


def example_columns(rows: Any, body: list[str]) -> Any:
    """The columns a trainer reads: the example's turns and, in versions that have it, its tool schemas
    (TRL passes a row's ``tools`` to the chat template)."""
    return rows.select_columns([*body, *(["tools"] if "tools" in rows.column_names else [])])


def with_replay(current: Any, kind: str, replay_dirs: list[Path], share: float, seed: int) -> Any:
    """Mix in rows from earlier dataset versions so that ``share`` of the result is replay (seeded)."""
    from datasets import concatenate_datasets

    if share <= 0 or not replay_dirs or len(current) == 0:
        return current
    seen = set(current["id"])
    pool = []
    for d in sorted(replay_dirs):
        rows = read_split(d, kind, "train")
        pool += [r for r in rows if r["id"] not in seen]
        seen.update(rows["id"])
    wanted = min(len(pool), round(len(current) * share / (1 - share)))
    if wanted == 0:
        return current
    picked = random.Random(seed).sample(sorted(pool, key=lambda r: (content_key(r), r["id"])), wanted)
    # Versions written before a column existed (``tools``) lack it: null there, as in rows that have no tools.
    picked = [{name: row.get(name) for name in current.column_names} for row in picked]
    replay = current.from_list(picked, features=current.features)
    return concatenate_datasets([current, replay]).shuffle(seed=seed)


def stage_arguments(stage: StageSection, config: RecipeConfig, rt: Runtime, output_dir: Path) -> dict[str, Any]:
    """TrainingArguments both recipes share; every number comes from the YAML."""
    return {
        "output_dir": str(output_dir),
        "max_steps": stage.max_steps,
        "num_train_epochs": stage.num_epochs,
        "learning_rate": stage.learning_rate,
        "per_device_train_batch_size": stage.batch_size,
        "gradient_accumulation_steps": stage.gradient_accumulation_steps,
        "warmup_steps": stage.warmup_steps,
        "lr_scheduler_type": "linear",
        "gradient_checkpointing": stage.gradient_checkpointing,
        "use_liger_kernel": stage.use_liger_kernel,
        "max_length": stage.max_length,
        "bf16": rt.bf16,
        "use_cpu": rt.use_cpu,
        "seed": config.seed,
        "data_seed": config.seed,
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": stage.save_steps,
        "save_total_limit": 1,
        "report_to": [],
        "disable_tqdm": False,
        "dataloader_num_workers": 0,
        "ddp_find_unused_parameters": False,
    }


def last_checkpoint(output_dir: Path) -> str | None:
    """The newest ``checkpoint-N`` under ``output_dir``, to resume a killed run from."""
    found = sorted(Path(output_dir).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return str(found[-1]) if found else None

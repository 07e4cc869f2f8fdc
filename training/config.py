"""Recipe configuration: one small YAML per model size (``training/configs/*.yaml``), validated here.

Unknown keys are refused (a typo must not silently fall back to a default). ``runtime`` turns the
config plus ``settings.train.device`` into the concrete device and precision: bf16 on CUDA, fp32 on
CPU; QLoRA (``quantization: 4bit``), FlashAttention-2 and Liger kernels need CUDA and their package, and
say so otherwise. ``resolve_device`` is the one place a device is chosen: training, the gate's evaluation
and the model server all ask it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flywheel.settings import Settings

CONFIGS_DIR = Path(__file__).with_name("configs")
DEFAULT_CONFIG = CONFIGS_DIR / "tiny.yaml"


class RecipeError(ValueError):
    """A recipe that cannot run as configured; the message names the key and the fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoraSection(_Section):
    r: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: str | list[str] = "all-linear"


class StageSection(_Section):
    """What SFT and DPO share: schedule, batch shape, speed switches."""

    max_steps: int = Field(-1, description="Optimizer steps; -1: use num_epochs")
    num_epochs: float = 1.0
    learning_rate: float = 2e-4
    batch_size: int = Field(8, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_length: int = Field(1024, ge=16)
    warmup_steps: float = Field(0, ge=0, description="Steps, or a fraction of all steps when < 1")
    gradient_checkpointing: bool = False
    use_liger_kernel: bool = False
    save_steps: int = Field(50, ge=1, description="Checkpoint interval: a killed run resumes from the last one")


class SFTSection(StageSection):
    packing: bool = Field(True, description="Best-fit packing, padding-free: position_ids restart per sample")


class DPOSection(StageSection):
    beta: float = Field(0.1, gt=0)
    loss_type: str = "sigmoid"
    precompute_ref_log_probs: bool = True
    precompute_ref_batch_size: int | None = Field(
        None, ge=1, description="Batch of the one reference pass (no gradients: can exceed batch_size); None: batch_size")


class RecipeConfig(_Section):
    model: Path | None = Field(None, description="Local HF model directory; None: settings / embedded model")
    start_from: Literal["production", "base"] = "production"
    replay_share: float = Field(0.0, ge=0.0, lt=1.0)
    quantization: Literal["none", "4bit"] = "none"
    attn_implementation: str = "sdpa"
    seed: int = 1234
    cpu_threads: int | None = Field(None, ge=1, description="torch threads on CPU; None: torch default")
    lora: LoraSection = LoraSection()
    sft: SFTSection = SFTSection()
    dpo: DPOSection = DPOSection()


def load_config(path: Path | None = None, settings: Settings | None = None) -> RecipeConfig:
    """Read a recipe YAML (default: ``settings.train.config``, else the tiny CPU config)."""
    import yaml

    path = Path(path or (settings.train.config if settings else None) or DEFAULT_CONFIG)
    if not path.is_file():
        raise RecipeError(f"recipe config {path} does not exist; pick one of {sorted(p.name for p in CONFIGS_DIR.glob('*.yaml'))}")
    data = yaml.safe_load(path.read_text()) or {}
    try:
        return RecipeConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        key = ".".join(str(p) for p in err["loc"])
        moved = " (the gate's settings live in the `gate:` section of flywheel settings now)" if key.split(".")[
            0] in ("eval", "gate") else ""
        raise RecipeError(f"{path}: {key}: {err['msg']}{moved}") from None


@dataclass(frozen=True)
class Runtime:
    device: str  # cpu | cuda
    bf16: bool

    @property
    def use_cpu(self) -> bool:
        return self.device == "cpu"


def resolve_device(requested: str = "auto") -> str:
    """``cuda`` or ``cpu`` for a ``train.device`` setting: ``auto`` takes CUDA when a device is visible."""
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise RecipeError("train.device=cuda but no CUDA device is visible; use device: auto or cpu")
    return "cuda" if requested != "cpu" and torch.cuda.is_available() else "cpu"


def runtime(config: RecipeConfig, device: str = "auto") -> Runtime:
    """Device and precision for this machine; refuses GPU-only switches (QLoRA, FlashAttention-2, Liger) without CUDA."""
    import torch

    cuda = resolve_device(device) == "cuda"
    if config.quantization == "4bit" and not (cuda and importable("bitsandbytes")):
        raise RecipeError("quantization: 4bit (QLoRA) needs a CUDA GPU and bitsandbytes (pip install bitsandbytes); "
                          "set quantization: none to train without it (fp32 on CPU)")
    if config.attn_implementation == "flash_attention_2" and not (cuda and importable("flash_attn")):
        raise RecipeError(f"attn_implementation: {config.attn_implementation} needs a CUDA GPU and the flash-attn "
                          "package; set attn_implementation: flex_attention (also no attention across packed "
                          "samples) or sdpa")
    for stage in ("sft", "dpo"):
        if getattr(config, stage).use_liger_kernel and not (cuda and importable("liger_kernel")):
            raise RecipeError(f"{stage}.use_liger_kernel: true needs a CUDA GPU and the liger-kernel package "
                              f"(pip install liger-kernel); set {stage}.use_liger_kernel: false")
    if not cuda and config.cpu_threads:
        # A small model on a shared box: extra threads mostly wait on each other (10x slower seen here).
        torch.set_num_threads(config.cpu_threads)
    return Runtime(device="cuda" if cuda else "cpu", bf16=cuda and torch.cuda.is_bf16_supported())


def importable(module: str) -> bool:
    """Whether ``module`` is installed, without importing it (importing bitsandbytes or liger is slow)."""
    import importlib.util

    return importlib.util.find_spec(module) is not None

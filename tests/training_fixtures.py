"""Helpers for the training tests: the real embedded base model (cached across sessions), small models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flywheel.settings import Settings

# A small shape for tests that need a real model directory but not a knowledgeable one.
SMALL_SHAPE = dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, steps=2, warmup_steps=1, batch_size=8)


@pytest.fixture(scope="session")
def embedded_base_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real embedded base model, built once and kept in pytest's cache dir (keyed by content hash)."""
    from demo.model import build_demo_model

    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider: build per session
    home = Path(cache.mkdir("flywheel-models")) if cache else tmp_path_factory.mktemp("embedded-base")
    return build_demo_model(Settings(home=home), progress=False)


@pytest.fixture(scope="session")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small_model(tmp_path_factory.mktemp("small-base"))


def build_small_model(home: Path, **shape: Any) -> Path:
    from demo.model import build_demo_model
    from training.base_model import BaseModelConfig

    return build_demo_model(Settings(home=home), BaseModelConfig(**{**SMALL_SHAPE, **shape}), progress=False)


def train_settings(home: Path, base_model: Path, **train: Any) -> Settings:
    settings = Settings(home=home, train={"base_model": base_model, "device": "cpu", **train})
    settings.ensure_dirs()
    return settings


def recipe(path: Path, **sections: dict[str, Any]) -> Path:
    """The shipped tiny recipe with some keys overridden, written to ``path``."""
    from training.config import DEFAULT_CONFIG

    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    for key, value in sections.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(data))
    return path


def lora_adapter(base: Path, out: Path, rank: int = 4) -> Path:
    """A real PEFT LoRA adapter for ``base`` (untrained weights are enough for the registry)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=rank, lora_alpha=2 * rank, target_modules="all-linear"))
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def smollm2(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M-Instruct prepared from its package (the Makefile installs it --no-deps), cached like the
    embedded model: the real tokenizer, chat template and weights, for small-shape runs of every path."""
    from training.prepared import prepare

    cache = getattr(request.config, "cache", None)
    home = Path(cache.mkdir("flywheel-models")) if cache else tmp_path_factory.mktemp("smollm2")
    return prepare(Settings(home=home), "smollm2", progress=False)

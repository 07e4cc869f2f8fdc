"""Helpers for the serving tests: a small base model, real LoRA adapters, a real uvicorn server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from training_fixtures import build_small_model

from flywheel.settings import Settings

# Serving tests need a real model directory (tokenizer, chat template, EOS), not a good one: the training
# tests' small builder, a little wider.
SERVING_SHAPE = dict(hidden_size=64, intermediate_size=128)


def build_small_base_model(home: Path) -> Path:
    return build_small_model(home, **SERVING_SHAPE)


@pytest.fixture(scope="session")
def small_base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small base model per test session, shared by the serving test modules."""
    return build_small_base_model(tmp_path_factory.mktemp("serving-base"))


def serving_settings(home: Path, base_model: Path, **serve: object) -> Settings:
    settings = Settings(home=home, train={"base_model": base_model, "device": "cpu"},
                        serve={"admin_key": "test-admin-key", "torch_threads": 1, **serve})
    settings.ensure_dirs()
    return settings


def make_adapter(settings: Settings, version: str, seed: int, scale: float = 0.5) -> Path:
    """A real PEFT LoRA adapter, its lora weights set from ``seed``, registered as ``version``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from training.files import model_fingerprint
    from training.registry import register_adapter

    base_path = settings.train.base_model
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_path),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * scale)
    trained = settings.home / "trained" / version
    model.save_pretrained(trained)
    registered = register_adapter(settings, trained, {"base_model": str(base_path), "dataset_version": None,
                                                      "base_model_hash": model_fingerprint(base_path),
                                                      "config": {"seed": seed}})
    assert registered == version, f"the registry named it {registered}; create test adapters in order"
    return settings.adapters_dir / version


def rehash(adapter: Path) -> None:
    """Make an edited adapter look registered as it is now (a bad run that was registered anyway)."""
    from training.files import sha256_file

    metadata = json.loads((adapter / "metadata.json").read_text())
    metadata["files"] = {name: sha256_file(adapter / name) for name in metadata["files"]}
    (adapter / "metadata.json").write_text(json.dumps(metadata))


def running_server(settings: Settings, production_hint: str | None = None):
    """The real app under a real uvicorn on a free 127.0.0.1 port."""
    from serving.app import background_server

    return background_server(settings, production_hint=production_hint)


def spool_lines(settings: Settings) -> list[dict]:
    """Every line the server spooled, decoded (a half-written line would fail here)."""
    lines = []
    for path in sorted(settings.spool_dir.glob("*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines()]
    return lines

"""The adapter registry: versions on disk, status in the warehouse, and refusal of broken adapters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from training_fixtures import build_small_model, lora_adapter, train_settings

from training import registry
from training.files import model_fingerprint
from training.registry import AdapterError

pytest_plugins = ("training_fixtures",)


def register(settings, base: Path, name: str, **meta) -> str:
    adapter = lora_adapter(base, settings.home / "trained" / name)
    return registry.register_adapter(settings, adapter, {"base_model": str(base), "dataset_version": "v1",
                                                         "base_model_hash": model_fingerprint(base), **meta})


def test_register_writes_version_dir_metadata_and_candidate_row(home, small_model):
    settings = train_settings(home, small_model)
    assert register(settings, small_model, "a", metrics={"task_accuracy": 0.5}) == "v1"
    assert register(settings, small_model, "b") == "v2"
    path = registry.adapter_path(settings, "v2")
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["version"] == "v2" and meta["dataset_version"] == "v1"
    assert meta["base_model_hash"] == model_fingerprint(small_model)
    assert set(meta["files"]) == {"adapter_config.json", "adapter_model.safetensors"}
    assert meta["project_version"] and meta["created_at"]
    assert registry.adapter_status(settings, "v2") == "candidate"
    assert registry.validate_adapter(path, small_model)["r"] == 4


def test_promotion_retires_previous_and_rollback_target_is_known(home, small_model):
    settings = train_settings(home, small_model)
    for name in "abc":
        register(settings, small_model, name)
    assert registry.production_version(settings) is None
    registry.set_status(settings, "v1", "production")
    registry.set_status(settings, "v2", "production")
    assert registry.production_version(settings) == "v2"
    assert registry.adapter_status(settings, "v1") == "retired"
    assert registry.previous_production(settings) == "v1"
    registry.set_status(settings, "v3", "rejected", "worse on golden set")
    assert registry.previous_production(settings) == "v1"
    with pytest.raises(AdapterError, match="not one of"):
        registry.set_status(settings, "v3", "shipped")
    with pytest.raises(AdapterError, match="not registered"):
        registry.set_status(settings, "v9", "production")


def test_corrupt_adapter_is_refused(home, small_model):
    settings = train_settings(home, small_model)
    register(settings, small_model, "a")
    path = registry.adapter_path(settings, "v1")
    weights = path / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(AdapterError, match="corrupt"):
        registry.validate_adapter(path, small_model)


def test_truncated_unregistered_weights_are_refused_with_reason(tmp_path, small_model):
    adapter = lora_adapter(small_model, tmp_path / "a")
    weights = adapter / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(AdapterError, match="cannot be read"):
        registry.validate_adapter(adapter, small_model)


def test_missing_files_are_refused(home, small_model, tmp_path):
    adapter = lora_adapter(small_model, tmp_path / "a")
    (adapter / "adapter_model.safetensors").unlink()
    with pytest.raises(AdapterError, match="missing adapter weights"):
        registry.validate_adapter(adapter, small_model)
    with pytest.raises(AdapterError, match="missing adapter weights"):
        registry.register_adapter(train_settings(home, small_model), adapter, {})
    (adapter / "adapter_config.json").unlink()
    with pytest.raises(AdapterError, match="adapter_config.json"):
        registry.validate_adapter(adapter, small_model)


def test_wrong_base_model_is_refused(home, small_model, tmp_path):
    other = build_small_model(tmp_path / "other", hidden_size=64)
    settings = train_settings(home, small_model)
    register(settings, small_model, "a")
    with pytest.raises(AdapterError, match="trained on base model"):
        registry.validate_adapter(registry.adapter_path(settings, "v1"), other)
    # without registry metadata the tensor shapes still give it away
    bare = lora_adapter(small_model, tmp_path / "bare")
    with pytest.raises(AdapterError, match="wrong base model"):
        registry.validate_adapter(bare, other)


def test_wrong_rank_is_refused(tmp_path, small_model):
    adapter = lora_adapter(small_model, tmp_path / "a", rank=4)
    with pytest.raises(AdapterError, match="rank 8 was expected"):
        registry.validate_adapter(adapter, small_model, expected_rank=8)
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "r": 8}))
    with pytest.raises(AdapterError, match="says r=8"):
        registry.validate_adapter(adapter, small_model)


@pytest.mark.parametrize("version", ["../v1", "v1/../../x", "/etc", "v0", "latest", "v1 ", ""])
def test_adapter_path_refuses_anything_but_registry_versions(home, small_model, version):
    settings = train_settings(home, small_model)
    with pytest.raises(AdapterError):
        registry.adapter_path(settings, version)


def test_adapter_path_refuses_symlink_out_of_registry(home, small_model, tmp_path):
    settings = train_settings(home, small_model)
    outside = lora_adapter(small_model, tmp_path / "outside")
    (settings.adapters_dir / "v7").symlink_to(outside, target_is_directory=True)
    with pytest.raises(AdapterError, match="outside the registry"):
        registry.adapter_path(settings, "v7")

"""One retraining turn: SFT -> DPO -> evaluate against production -> gate -> register.

``retrain`` is the function the CLI (``flywheel train``), the Prefect ``retrain`` flow and the tests
call. A run is keyed by its inputs (dataset version, config, base model, starting adapter): running it
again after a crash resumes from the last checkpoint in ``FLYWHEEL_HOME/runs/<run_id>/``. Training
state goes to ``training_runs``; a failed run is recorded as failed and never touches production.
The new adapter is always registered (as ``candidate``) so its evaluation can be inspected; a gate
refusal marks it ``rejected``. Promotion to production is the deploy stage's job (it hot-swaps the
server first), unless ``promote=True`` asks for it here (no server to swap). ``evaluate_adapter`` measures
an adapter already registered (``flywheel eval``); both find what to measure against with ``reference_adapter``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flywheel.settings import Settings
from flywheel.warehouse import content_id
from training import registry
from training.common import dataset_dir, earlier_versions, read_split, resolve_base_model
from training.config import RecipeError, load_config
from training.dpo import train_dpo
from training.evaluate import Evaluation, evaluate, gate_checks
from training.files import model_fingerprint
from training.report import markdown, plot_curves
from training.sft import train_sft


@dataclass
class RetrainResult:
    run_id: str
    dataset_version: str
    adapter_version: str
    decision: str  # promote | reject
    reasons: list[str]
    candidate: dict[str, float]
    reference: dict[str, float]
    reference_name: str
    run_dir: Path
    report_path: Path
    charts: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class Reference:
    """What a candidate is measured against: a registered adapter, or the base model (``version`` None)."""

    version: str | None
    path: Path | None
    name: str  # "production vK", "vK" or "base": how reports and tables name it


def reference_adapter(settings: Settings, base: Path, against: str = "production") -> Reference:
    """``production`` (the base model while none is), ``base``, or a version such as ``v3``; the adapter is
    checked against ``base`` (AdapterError when it does not belong to it)."""
    version = registry.production_version(settings) if against == "production" else (
        None if against == "base" else against)
    path = registry.adapter_path(settings, version) if version else None
    if path is not None:
        registry.validate_adapter(path, base)
    name = f"production {version}" if against == "production" and version else (version or "base")
    return Reference(version, path, name)


def evaluate_adapter(settings: Settings, adapter: str, against: str = "production", dataset_version: str | None = None,
                     config_path: Path | None = None) -> Evaluation:
    """Evaluate a registered adapter against ``against`` on a dataset version's held-out splits (default: the
    version it was trained on) and record the gate decision: ``flywheel eval``."""
    config = load_config(config_path, settings)
    base = resolve_base_model(settings, config)
    path = registry.adapter_path(settings, adapter)
    registry.validate_adapter(path, base)
    reference = reference_adapter(settings, base, against)
    version = dataset_version or registry.read_metadata(path).get("dataset_version")
    if not version:
        raise RecipeError(f"adapter {adapter} records no dataset version; pass --dataset vN")
    evaluation = evaluate(settings, config, base, path, reference.path, dataset_dir(settings, version), reference.name)
    registry.record_evaluation(settings, adapter, reference.version, evaluation)
    return evaluation


def retrain(settings: Settings, dataset_version: str, config_path: Path | None = None, promote: bool = False,
            callbacks: list[Any] | None = None) -> RetrainResult:
    """Train a candidate adapter on ``dataset_version``, evaluate it against production, gate and register it."""
    config = load_config(config_path, settings)
    data = dataset_dir(settings, dataset_version)
    gate_checks(settings, data)  # a bad eval-set file or gate setting fails here, before any training
    base = resolve_base_model(settings, config)
    base_hash = model_fingerprint(base)
    reference = reference_adapter(settings, base)
    production = reference.version
    init_adapter = reference.path if config.start_from == "production" else None
    config_json = config.model_dump(mode="json")
    run_id = "run-" + content_id(dataset_version, config_json, base_hash, production, config.start_from)[:16]
    run_dir = settings.home / "runs" / run_id
    registry.run_started(settings, run_id, dataset_version, config_json)
    try:
        if _count(data, "sft") == 0:
            raise RecipeError(f"dataset {dataset_version} has no SFT training rows; nothing to train on")
        sft = train_sft(config, base, data, run_dir / "sft", init_adapter, earlier_versions(settings, dataset_version),
                        settings.train.device, callbacks)
        dpo_rows = _count(data, "dpo")
        if dpo_rows:
            dpo = train_dpo(config, base, data, run_dir / "dpo", sft.adapter_dir, settings.train.device, callbacks)
            final_dir, dpo_log = dpo.adapter_dir, dpo.log_history
        else:
            final_dir, dpo_log = sft.adapter_dir, []
        evaluation = evaluate(settings, config, base, final_dir, reference.path, data, reference.name)
        version = registry.register_adapter(settings, final_dir, {
            "dataset_version": dataset_version, "base_model": str(base), "base_model_hash": base_hash,
            "config": config_json, "metrics": evaluation.candidate, "reference": reference.name,
            "reference_metrics": evaluation.reference, "gate": {"decision": evaluation.gate.decision,
                                                                "reasons": evaluation.gate.reasons},
            "started_from": str(production) if init_adapter else "base", "run_id": run_id,
        })
        registry.record_evaluation(settings, version, production, evaluation)
        if not evaluation.gate.promote:
            registry.set_status(settings, version, "rejected", "; ".join(evaluation.gate.reasons))
        elif promote:
            registry.set_status(settings, version, "production", "gate passed; promoted by retrain")
        charts = plot_curves(sft.log_history, dpo_log, run_dir)
        facts = {"dataset": dataset_version, "adapter": version, "run": run_id, "started from":
                 production if init_adapter else "base", "SFT rows": _count(data, "sft"), "DPO pairs": dpo_rows}
        report_path = run_dir / "report.md"
        report_path.write_text(markdown(f"Retraining on {dataset_version}: adapter {version}", evaluation, facts,
                                        charts))
    except Exception as exc:
        registry.run_finished(settings, run_id, "failed", None, f"{type(exc).__name__}: {exc}")
        raise
    registry.run_finished(settings, run_id, "succeeded", version, None)
    return RetrainResult(run_id, dataset_version, version, evaluation.gate.decision, evaluation.gate.reasons,
                         evaluation.candidate, evaluation.reference, reference.name, run_dir, report_path, charts)


def _count(data: Path, kind: str) -> int:
    return len(read_split(data, kind, "train")) if (data / kind).is_dir() else 0

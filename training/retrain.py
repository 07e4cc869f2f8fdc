"""One retraining turn: SFT -> DPO -> evaluate against production -> gate -> register.

``retrain`` is the function the CLI (``flywheel train``), the Prefect ``retrain`` flow and the tests
call. A run is keyed by its inputs (dataset version, config, base model, starting adapter): running it
again after a crash resumes from the last checkpoint in ``FLYWHEEL_HOME/runs/<run_id>/``. Training
state goes to ``training_runs``; a failed run is recorded as failed and never touches production.
The new adapter is always registered (as ``candidate``) so its evaluation can be inspected; a gate
refusal marks it ``rejected``. Promotion to production is the deploy stage's job (it hot-swaps the
server first), unless ``promote=True`` asks for it here (no server to swap).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flywheel.settings import Settings
from flywheel.warehouse import connect, content_id, now
from training.config import RecipeError


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


def dataset_dir(settings: Settings, version: str) -> Path:
    from training.registry import VERSION_RE

    if not VERSION_RE.match(version):
        raise RecipeError(f"dataset version {version!r} is not of the form vN (v1, v2, ...)")
    path = settings.datasets_dir / version
    if not (path / "sft").is_dir():
        raise RecipeError(f"dataset {version} not found at {path}; run `flywheel curate` or list {settings.datasets_dir}")
    return path


def earlier_versions(settings: Settings, version: str) -> list[Path]:
    """Dataset versions before ``version`` (the replay pool)."""
    number = int(version[1:])
    return sorted((p for p in settings.datasets_dir.glob("v*") if p.name[1:].isdigit() and int(p.name[1:]) < number
                   and (p / "sft").is_dir()), key=lambda p: int(p.name[1:]))


def retrain(settings: Settings, dataset_version: str, config_path: Path | None = None, promote: bool = False,
            callbacks: list[Any] | None = None) -> RetrainResult:
    """Train a candidate adapter on ``dataset_version``, evaluate it against production, gate and register it."""
    from training import registry
    from training.common import resolve_base_model
    from training.config import load_config
    from training.dpo import train_dpo
    from training.evaluate import evaluate, gate_checks, record_evaluation
    from training.files import model_fingerprint
    from training.report import markdown, plot_curves
    from training.sft import train_sft

    config = load_config(config_path, settings)
    data = dataset_dir(settings, dataset_version)
    gate_checks(settings, data)  # a bad eval-set file or gate setting fails here, before any training
    base = resolve_base_model(settings, config)
    base_hash = model_fingerprint(base)
    production = registry.production_version(settings)
    production_dir = registry.adapter_path(settings, production) if production else None
    if production_dir is not None:
        registry.validate_adapter(production_dir, base)
    init_adapter = production_dir if config.start_from == "production" else None
    config_json = config.model_dump(mode="json")
    run_id = "run-" + content_id(dataset_version, config_json, base_hash, production, config.start_from)[:16]
    run_dir = settings.home / "runs" / run_id
    _run_started(settings, run_id, dataset_version, config_json)
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
        reference_name = f"production {production}" if production else "base"
        evaluation = evaluate(settings, config, base, final_dir, production_dir, data, reference_name)
        version = registry.register_adapter(settings, final_dir, {
            "dataset_version": dataset_version, "base_model": str(base), "base_model_hash": base_hash,
            "config": config_json, "metrics": evaluation.candidate, "reference": reference_name,
            "reference_metrics": evaluation.reference, "gate": {"decision": evaluation.gate.decision,
                                                                "reasons": evaluation.gate.reasons},
            "started_from": str(production) if init_adapter else "base", "run_id": run_id,
        })
        record_evaluation(settings, version, production, evaluation)
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
        _run_finished(settings, run_id, "failed", None, f"{type(exc).__name__}: {exc}")
        raise
    _run_finished(settings, run_id, "succeeded", version, None)
    return RetrainResult(run_id, dataset_version, version, evaluation.gate.decision, evaluation.gate.reasons,
                         evaluation.candidate, evaluation.reference, reference_name, run_dir, report_path, charts)


def _count(data: Path, kind: str) -> int:
    from training.common import read_split

    return len(read_split(data, kind, "train")) if (data / kind).is_dir() else 0


def _run_started(settings: Settings, run_id: str, dataset_version: str, config: dict[str, Any]) -> None:
    with connect(settings) as con:
        con.execute(
            "INSERT INTO training_runs (run_id, dataset_version, status, config, started_at) VALUES (?, ?, 'running', ?, ?) "
            "ON CONFLICT (run_id) DO UPDATE SET status = 'running', error = NULL, started_at = excluded.started_at, "
            "finished_at = NULL",
            [run_id, dataset_version, json.dumps(config), now()],
        )


def _run_finished(settings: Settings, run_id: str, status: str, adapter_version: str | None, error: str | None) -> None:
    with connect(settings) as con:
        con.execute(
            "UPDATE training_runs SET status = ?, adapter_version = ?, error = ?, finished_at = ? WHERE run_id = ?",
            [status, adapter_version, error, now(), run_id],
        )

"""Prefect flow ``retrain``: train -> evaluate -> gate -> register, on a GPU work queue.

One thin task over ``training.retrain.retrain`` (the function ``flywheel train`` and the tests call);
it passes the dataset version in and plain summaries out. While training runs, a progress artifact
(``retrain-progress``) is updated from the trainers' logs; at the end the report (``retrain-report``:
markdown with the metric tables and the loss / reward curves inlined) and a metrics table
(``retrain-metrics``) are attached. Deployments tag it ``gpu`` with a concurrency limit of 1
(flows/deployments.py) and trigger it from ``flywheel.dataset.ready`` and a weekly cron. A failed
training raises, is recorded as failed in ``training_runs`` and leaves production untouched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flywheel.settings import load_settings
from training.evaluate import Evaluation, GateDecision
from training.report import markdown, metric_rows
from training.retrain import retrain


def _progress_callback() -> Any:
    """A TrainerCallback that mirrors step / loss into a Prefect progress artifact."""
    from prefect.artifacts import create_progress_artifact, update_progress_artifact
    from transformers import TrainerCallback

    class PrefectProgress(TrainerCallback):
        def __init__(self) -> None:
            self.artifact_id = create_progress_artifact(progress=0.0, key="retrain-progress",
                                                        description="Training progress of the current stage")

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
            if state.max_steps and state.is_world_process_zero:
                update_progress_artifact(self.artifact_id, progress=100.0 * state.global_step / state.max_steps,
                                         description=f"step {state.global_step}/{state.max_steps}, "
                                                     f"loss {(logs or {}).get('loss', float('nan')):.4f}")

    return PrefectProgress()


def _number(value: float) -> float | None:
    """NaN (a metric with nothing to measure) as an empty cell: artifacts are JSON."""
    return None if value != value else round(value, 4)


# log_prints off: datasets hashes functions through dill, which prints their disassembly while capturing
# stdout; with Prefect's print capture on, every line of it would land in the run's log.
@task(tags=["gpu"], log_prints=False)
def train_and_gate(dataset_version: str, config: str | None, promote: bool) -> dict[str, Any]:
    """SFT + DPO + eval + gate + register; returns the decision, metrics and report paths."""
    result = retrain(load_settings(), dataset_version, Path(config) if config else None, promote=promote,
                     callbacks=[_progress_callback()])
    return {"run_id": result.run_id, "dataset_version": dataset_version, "adapter_version": result.adapter_version,
            "decision": result.decision, "reasons": result.reasons, "candidate": result.candidate,
            "reference": result.reference, "reference_name": result.reference_name,
            "report_path": str(result.report_path), "charts": [str(c) for c in result.charts]}


@flow(name="retrain", log_prints=True)
def retrain_flow(dataset_version: str, config: str | None = None, promote: bool = False) -> dict[str, Any]:
    """Retrain a LoRA adapter on ``dataset_version`` and gate it against production."""
    result = train_and_gate(dataset_version, config, promote)
    evaluation = Evaluation(result["candidate"], result["reference"], result["reference_name"],
                            GateDecision(result["decision"] == "promote", result["reasons"]))
    facts = {"dataset": dataset_version, "adapter": result["adapter_version"], "run": result["run_id"]}
    create_markdown_artifact(
        key="retrain-report", description=f"Adapter {result['adapter_version']}: {result['decision']}",
        markdown=markdown(f"Retraining on {dataset_version}", evaluation, facts,
                          [Path(c) for c in result["charts"]], inline_images=True))
    create_table_artifact(
        key="retrain-metrics", description=f"{result['adapter_version']} vs {result['reference_name']}",
        table=[{"metric": m, "candidate": _number(result["candidate"][m]),
                result["reference_name"]: _number(result["reference"][m])}
               for m in metric_rows(result["candidate"]) if m in result["reference"]])
    print(f"adapter {result['adapter_version']}: {result['decision']} — " + "; ".join(result["reasons"]))
    return result

"""Prefect flow ``flywheel``: one full turn of the wheel, each stage its own sub-flow run in the UI.

collect -> curate -> retrain -> (gate said promote?) deploy. Re-running a turn is idempotent: curating
the same window returns the version it already made, a dataset version that already has an adapter is
not trained again, and an adapter already in production is not deployed again. A failure anywhere
leaves production serving the adapter it had (retrain only registers a candidate; deploy rolls back
when its smoke check fails). The ``flywheel-funnel`` artifact shows the turn on one page.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_table_artifact

from curation import review_queue, store
from flows.collect import collect_feedback
from flows.curate import curate_flow
from flows.deploy import deploy_flow
from flows.retrain import retrain_flow
from flywheel.settings import Settings, load_settings
from flywheel.warehouse import connect
from training import registry


def _funnel_rows(settings: Settings, collected: dict[str, Any], curated: dict[str, Any]) -> list[dict[str, Any]]:
    with connect(settings, read_only=True) as con:
        bad_cases, reviewed = store.count_bad_cases(con), review_queue.count_reviewed(con)
    rows = [{"stage": "ingested interactions (this turn)", "in": None, "out": collected["interactions_new"]},
            {"stage": "quarantined at ingest (this turn)", "in": None, "out": collected["quarantined"]},
            {"stage": "bad cases mined (all time)", "in": None, "out": bad_cases},
            {"stage": "reviewed by annotators (all time)", "in": None, "out": reviewed}]
    return rows + [{"stage": stage, "in": n_in, "out": n_out} for stage, n_in, n_out in curated["funnel"]]


@flow(name="flywheel", log_prints=True)
def flywheel_flow(serve_url: str | None = None) -> dict[str, Any]:
    """Run one turn; returns what each stage did (the demo prints it)."""
    settings = load_settings()
    collected = collect_feedback()
    curated = curate_flow()
    create_table_artifact(key="flywheel-funnel", table=_funnel_rows(settings, collected, curated),
                          description="ingested -> bad cases -> reviewed -> scrubbed -> deduped -> HAP -> examples")
    turn: dict[str, Any] = {
        "ingested": collected["interactions_new"],
        "dataset_version": curated["version"],
        "new_examples": curated["n_new"] if curated["created"] else 0,
        "steps": [tuple(step["headline"]) for step in curated["steps"]],
        "decision": "no dataset",
    }
    if curated["version"] is None:
        print(f"nothing to train on: {curated['message']}")
        return turn

    existing = registry.adapter_for_dataset(settings, curated["version"])
    if existing is None:
        trained = retrain_flow(dataset_version=curated["version"])
        adapter, status, decision = trained["adapter_version"], "candidate", trained["decision"]
        turn.update(reasons=trained["reasons"], candidate=trained["candidate"], reference=trained["reference"])
    else:
        adapter, status, decision = existing
        print(f"{curated['version']} already trained into {adapter} ({status}); not training again")
    turn.update(adapter_version=adapter, decision=decision)
    if decision != "promote":
        print(f"{adapter} not promoted by the gate")
    elif status == "production":
        print(f"{adapter} is already in production; nothing to deploy")
    else:
        turn["deployed"] = deploy_flow(version=adapter, url=serve_url)["version"]
    return turn

"""Prefect flow ``collect_feedback``: ingest the inbox and the spool, leave a summary artifact."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from collectors.ingest import collect
from flywheel.settings import load_settings


@task(retries=2, retry_delay_seconds=[5, 30])
def ingest_sources(sources: list[str] | None) -> dict:
    """The collector itself; retried because a transient lock or I/O error is worth a second try."""
    summary = collect(load_settings(), [Path(s) for s in sources] if sources else None)
    return summary.as_dict()


@flow(name="collect_feedback", log_prints=True)
def collect_feedback(sources: list[str] | None = None) -> dict:
    """Ingest interactions and feedback; the `collect-summary` artifact shows what happened."""
    summary = ingest_sources(sources)
    rows = [{"what": k, "count": v} for k, v in summary.items() if k != "quarantined_by_reason"]
    rows += [{"what": f"quarantined: {k}", "count": v} for k, v in summary["quarantined_by_reason"].items()]
    create_table_artifact(key="collect-summary", table=rows,
                          description="Records read / ingested / duplicates skipped / quarantined by reason")
    print(f"collected {summary['interactions_new']} interactions, {summary['feedback_new']} feedback, "
          f"{summary['quarantined']} quarantined")
    return summary

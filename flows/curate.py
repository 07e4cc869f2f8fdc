"""Prefect flow ``curate``: mine bad cases, then curate the window into a dataset version.

Tasks are thin wrappers over ``curation.mining.mine`` and ``curation.pipeline.curate`` (the functions the
CLI and the tests call); they pass plain summaries, and the dataset itself stays on disk. Keyed
artifacts: ``curate-funnel`` (records in/out per stage), one ``curate-<step>`` table per curation step
(what it replaced or dropped, overall and per language), ``curate-examples`` (a few examples per reason,
as the dataset holds them: scrubbed), ``curate-mining`` (signals).
When the version holds at least ``curate.min_new_examples`` new examples the flow emits
``flywheel.dataset.ready`` with payload ``{"uri", "version"}``, which triggers retraining.
With ``flows.dask_address`` set, the per-record steps (scrub, HAP) are mapped over shards on that Dask
cluster through prefect-dask's task runner; the dataset is the same as the single-process run's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from curation.mining import mine
from curation.pipeline import curate
from curation.step import report_rows
from flywheel.settings import load_settings

DATASET_READY = "flywheel.dataset.ready"


@task(retries=2, retry_delay_seconds=[5, 30])
def mine_bad_cases(since: datetime | None, until: datetime | None) -> dict[str, Any]:
    """Score interactions and fill the review queue; retried on a transient warehouse lock."""

    result = mine(load_settings(), since, until)
    return {"rows": result.as_rows()}


def log_progress() -> Callable[[str, int, int], None]:
    """Progress of each curation stage in the run's log, every tenth of the way."""
    logger, last = get_run_logger(), {}

    def report(stage: str, done: int, total: int) -> None:
        tenth = 10 * done // total if total else 10
        if last.get(stage) != tenth:
            last[stage] = tenth
            logger.info("%s: %d/%d records (%d%%)", stage, done, total, 100 * done // max(total, 1))

    return report


@task
def curate_window(since: datetime | None, until: datetime | None) -> dict[str, Any]:
    """Build the examples, run the curation steps and write the version (or find the one made from this window)."""

    return curate(load_settings(), since, until, mine_first=False, progress=log_progress()).as_dict()


@task(retries=1)
def curation_shard(fn: Callable[[list[dict]], Any], shard: list[dict]) -> Any:
    """One shard of the per-record curation steps, on a Dask worker."""
    return fn(shard)


def curate_on_dask(address: str, since: datetime | None, until: datetime | None) -> dict[str, Any]:
    """The same ``curate``, with the per-record steps mapped over shards on the Dask cluster at ``address``."""
    from prefect.utilities.annotations import unmapped
    from prefect_dask import DaskTaskRunner


    with DaskTaskRunner(address=address) as runner:
        def map_shards(fn: Callable[[list[dict]], Any], shards: list[list[dict]]) -> Iterator[Any]:
            futures = runner.map(curation_shard, {"fn": unmapped(fn), "shard": shards})
            return (future.result() for future in futures)

        return curate(load_settings(), since, until, mine_first=False, map_shards=map_shards,
                      progress=log_progress()).as_dict()


def _table(key: str, rows: list[dict[str, Any]], description: str) -> None:
    create_table_artifact(key=key, table=rows or [{"what": "(nothing)", "count": 0}], description=description)


def _examples_markdown(steps: list[dict[str, Any]]) -> str:
    lines = ["# What the curation steps did, by example", "",
             "A few records per reason, as the dataset or the quarantine holds them (scrubbed text only)."]
    for stats in steps:
        lines += ["", f"## {stats['name']}"]
        for reason, examples in sorted(stats["examples"].items()):
            lines += ["", f"**{reason}**", ""] + [f"- `{e}`" for e in examples]
        if not stats["examples"]:
            lines.append("(nothing to show)")
    return "\n".join(lines)


@flow(name="curate", log_prints=True)
def curate_flow(since: datetime | None = None, until: datetime | None = None) -> dict[str, Any]:
    """Curate the window [since, until) (default: everything) into FLYWHEEL_HOME/datasets/vN."""
    mined = mine_bad_cases(since, until)
    settings = load_settings()
    address = settings.flows.dask_address
    result = curate_on_dask(address, since, until) if address else curate_window(since, until)
    _table("curate-mining", [{"what": k, "count": v} for k, v in mined["rows"]],
           "Bad-case mining: interactions scanned, bad cases, clusters, queued for review, per signal")
    _table("curate-funnel", [{"stage": s, "in": i, "out": o} for s, i, o in result["funnel"]],
           f"{result['message']}; quarantined with reasons: {result['quarantined']}")
    for stats in result["steps"]:
        _table(f"curate-{re.sub(r'[^a-z0-9-]+', '-', stats['name'].lower())}", report_rows(stats),
               f"Step {stats['name']}: records in / kept, drops per reason, what it replaced; overall and per "
               f"language; {stats['seconds']:.1f} s")
    create_markdown_artifact(key="curate-examples", markdown=_examples_markdown(result["steps"]),
                             description="Examples of what each curation step replaced or dropped")
    if result["created"] and result["n_new"] >= settings.curate.min_new_examples:
        from prefect.events import emit_event

        emit_event(event=DATASET_READY, resource={"prefect.resource.id": f"flywheel.dataset.{result['version']}"},
                   payload={"uri": result["uri"], "version": result["version"]})
        print(f"{DATASET_READY}: {result['version']} ({result['n_new']} new examples) at {result['uri']}")
    else:
        print(f"no dataset event: {result['message']} ({result['n_new']} new, "
              f"threshold {settings.curate.min_new_examples})")
    return result

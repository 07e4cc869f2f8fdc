"""The collect_feedback flow against a real Prefect server."""

from __future__ import annotations

from conftest import artifact_data

from demo import sample_data
from flywheel.warehouse import status


def test_collect_flow_ingests_and_leaves_summary_artifact(settings, prefect_server):
    from flows.collect import collect_feedback

    records, feedback = sample_data.interactions(40, seed=21)
    sample_data.write_jsonl(settings.inbox_dir / "week.jsonl", records + feedback)
    (settings.inbox_dir / "bad.jsonl").write_text('{"id": 1, "messages": "nope"}\n')

    summary = collect_feedback()
    assert summary["interactions_new"] == 40 and summary["quarantined"] == 1
    assert status(settings)["interactions"] == 40

    as_dict = {row["what"]: row["count"] for row in artifact_data("collect-summary")}
    assert as_dict["interactions_new"] == 40 and as_dict["quarantined"] == 1
    assert any(k.startswith("quarantined: ") for k in as_dict)

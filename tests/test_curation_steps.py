"""The pipeline runs the steps: a step added by one line of settings shows in the funnel and its artifact;
a process pool and a resumed run give the same records as one process running everything."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import artifact_data

from collectors.ingest import collect
from curation.executor import Pipeline, local_map
from curation.step import RunContext, step_class
from demo import sample_data
from flywheel.settings import load_settings


def _records(n: int) -> list[dict]:
    return [{"id": f"r{i:03d}", "messages": [{"role": "user", "content": f"question {i}"},
                                             {"role": "assistant", "content": "NO" if i % 5 == 0 else f"answer {i}"}]}
            for i in range(n)]


def test_a_step_added_in_settings_shows_in_the_funnel_and_its_artifact(tmp_path, monkeypatch, prefect_server):
    from flows.curate import curate_flow

    monkeypatch.setenv("FLYWHEEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FLYWHEEL_CURATE__STEPS", '["dedup", "toy_steps:Shout", "scrub", "hap"]')
    settings = load_settings()
    settings.ensure_dirs()
    records, feedback = sample_data.interactions(60, seed=12)
    collect(settings, [sample_data.write_jsonl(settings.inbox_dir / "t.jsonl", records + feedback)])
    result = curate_flow()
    assert [s["name"] for s in result["steps"]] == ["dedup", "shout", "scrub", "hap"]
    assert [row["stage"] for row in artifact_data("curate-funnel")][-4:] == ["dedup", "shout", "scrub", "hap"]
    shout = {row["what"]: row for row in artifact_data("curate-shout")}
    assert shout["in"]["all"] == shout["kept"]["all"] > 0 and shout["calm"]["en"] == shout["kept"]["all"]


def test_unknown_step_is_refused_by_name():
    with pytest.raises(ValueError, match="'toy_steps:Missing'.*check the module path"):
        step_class("toy_steps:Missing")
    with pytest.raises(ValueError, match="neither a registered step"):
        step_class("dedupe")


def test_process_pool_gives_the_records_and_stats_of_one_process(tmp_path, settings):
    records = _records(40)
    one = Pipeline(["toy_steps:Shout"], RunContext(settings), local_map(1), shard_size=6)
    pool = Pipeline(["toy_steps:Shout"], RunContext(settings), local_map(2), shard_size=6)
    assert pool.run([dict(r) for r in records]) == one.run([dict(r) for r in records])
    timeless = [[{k: v for k, v in step.items() if k != "seconds"} for step in p.report()] for p in (pool, one)]
    assert timeless[0] == timeless[1]
    assert one.stats[0].dropped == {"shouting": 8} and len(one.exclusions.items) == 8


def test_an_interrupted_run_resumes_from_its_checkpoints(tmp_path, settings, monkeypatch):
    log = tmp_path / "seen.log"
    monkeypatch.setenv("FLYWHEEL_TEST_LOG", str(log))
    monkeypatch.setenv("FLYWHEEL_TEST_FAIL_ON", "r025")
    records = _records(40)
    checkpoints = tmp_path / "checkpoints"

    def run() -> list[dict]:
        return Pipeline(["toy_steps:Logged", "toy_steps:Shout"], RunContext(settings), local_map(1), shard_size=10,
                        checkpoint_dir=checkpoints).run([dict(r) for r in records])

    with pytest.raises(RuntimeError, match="worker lost"):
        run()
    first = log.read_text().split()
    assert first == [f"r{i:03d}" for i in range(20)]  # two shards done before the crash
    monkeypatch.delenv("FLYWHEEL_TEST_FAIL_ON")
    kept = run()
    assert log.read_text().split()[20:] == [f"r{i:03d}" for i in range(20, 40)]  # only the rest again
    assert [r["id"] for r in kept] == [r["id"] for r in records if r["messages"][-1]["content"] != "NO"]
    assert {r["seen_by"] for r in kept} == {os.getpid()}
    assert Path(checkpoints).is_dir()


def test_a_record_with_an_unpaired_surrogate_is_quarantined_not_a_crash(settings):
    """A broken UTF-16 decode leaves lone surrogates ("\\ud800" in JSON). spaCy, the HAP encoders and orjson refuse
    them, so one such record crashed a scrub or HAP run and its quarantine row could not be written. Every step now
    drops it before its own work, naming the field, and the quarantine keeps it as it came. (A record with no
    "kind" beside it made dedup's list of partitions one short, and the batch crashed.)"""
    broken = {"id": "bad", "kind": "sft", "messages": [
        {"role": "user", "content": "Hi, I'm Jane Roe \ud800 and I need help"}, {"role": "assistant", "content": "Sure."}]}
    records = [broken, *({**r, "kind": "sft"} for r in _records(3)), {"id": "no-kind", "messages": []}]
    pipeline = Pipeline(["dedup", "scrub", "hap"], RunContext(settings), local_map(1), shard_size=10)
    kept = pipeline.run([dict(r) for r in records])
    assert [r["id"] for r in kept] == ["r000", "r001", "r002"]
    assert {ex.record["id"]: ex.reason.split(":")[0] for ex in pipeline.exclusions.items} == {
        "bad": "bad_text", "no-kind": "invalid"}                 # no "kind": dedup lost count of its partitions
    [exclusion] = [ex for ex in pipeline.exclusions.items if ex.record["id"] == "bad"]
    assert exclusion.step == "dedup" and exclusion.reason.startswith("bad_text: field 'messages.0.content' holds an "
                                                                     "unpaired surrogate '\\ud800' at character 17")
    [row] = [r for r in pipeline.exclusions.to_rejected() if '"bad"' in r.raw]
    assert json.loads(row.raw) == broken

"""The curate flow on a real Prefect server: keyed artifacts, and the same dataset on a real Dask cluster."""

from __future__ import annotations

import orjson
import pytest
from conftest import artifact_data, read_artifacts

from collectors.ingest import collect
from demo import sample_data
from flywheel.settings import load_settings

pytestmark = pytest.mark.slow  # Presidio + HAP scorer, twice, plus Dask workers


def _home_with_traffic(path, monkeypatch):
    monkeypatch.setenv("FLYWHEEL_HOME", str(path))
    settings = load_settings()
    settings.ensure_dirs()
    records, feedback = sample_data.interactions(120, seed=31)
    collect(settings, [sample_data.write_jsonl(settings.inbox_dir / "t.jsonl", records + feedback)])
    return settings


def test_curate_flow_artifacts_and_dask_gives_the_same_dataset(tmp_path, monkeypatch, prefect_server):
    from distributed import LocalCluster

    from flows.curate import curate_flow

    single = _home_with_traffic(tmp_path / "single", monkeypatch)
    local = curate_flow()
    assert local["created"] and local["version"] == "v1"
    for key in ("curate-mining", "curate-funnel", "curate-dedup", "curate-scrub", "curate-hap", "curate-examples"):
        assert read_artifacts(key), f"artifact {key} missing"
    assert [row["stage"] for row in artifact_data("curate-funnel")][-3:] == ["dedup", "scrub", "hap"]
    scrub_rows = {row["what"]: row for row in artifact_data("curate-scrub")}
    assert scrub_rows["replaced:EMAIL_ADDRESS"]["all"] > 0 and scrub_rows["replaced:EMAIL_ADDRESS"]["en"] > 0

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        monkeypatch.setenv("FLYWHEEL_FLOWS__DASK_ADDRESS", cluster.scheduler_address)
        monkeypatch.setenv("FLYWHEEL_CURATE__SHARD_SIZE", "7")  # several shards, spread over both workers
        sharded_settings = _home_with_traffic(tmp_path / "dask", monkeypatch)
        sharded = curate_flow()
        monkeypatch.delenv("FLYWHEEL_FLOWS__DASK_ADDRESS")

    assert sharded["version"] == "v1" and sharded["n_new"] == local["n_new"] > 14
    for name in ("dedup", "scrub", "hap"):
        mine, theirs = (next(s for s in run["steps"] if s["name"] == name) for run in (sharded, local))
        assert (mine["in"], mine["kept"], mine["dropped"], mine["counts"]) == \
               (theirs["in"], theirs["kept"], theirs["dropped"], theirs["counts"])
    manifest = [orjson.loads((s.datasets_dir / "v1" / "manifest.json").read_bytes())
                for s in (single, sharded_settings)]
    assert manifest[0]["content_hash"] == manifest[1]["content_hash"]

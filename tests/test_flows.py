"""The weekly flywheel on a real Prefect server: a full turn with a real model server, idempotent re-runs,
an injected training failure, the dataset-ready event starting ``retrain``, and the deployments."""

from __future__ import annotations

import asyncio
import time

import pytest
from conftest import artifact_data, read_artifacts
from serving_fixtures import running_server
from training_fixtures import build_small_model, embedded_base_model, recipe  # noqa: F401 - fixture

from collectors.ingest import collect
from demo import sample_data
from flywheel.settings import load_settings
from flywheel.warehouse import connect

pytestmark = pytest.mark.slow  # presidio, HAP, SFT + DPO on a small model, a model server


@pytest.fixture(scope="module")
def small_base(tmp_path_factory):
    """A model that only emits noise: its adapters fail the deployment smoke check."""
    return build_small_model(tmp_path_factory.mktemp("flows-base"))


@pytest.fixture
def flow_settings(request, home, tmp_path, monkeypatch):
    """Settings the flows read from the environment: the embedded model, a short recipe, a lenient gate.

    The gate's own decisions are tested in the training tests; here an adapter only has to get through
    the turn, so the margin lets one that is no worse through. ``@pytest.mark.base("small_base")``
    switches to the noise model.
    """
    marker = request.node.get_closest_marker("base")
    base = request.getfixturevalue(marker.args[0] if marker else "embedded_base_model")
    short = recipe(tmp_path / "recipe.yaml", sft={"max_steps": 4}, dpo={"max_steps": 2})
    for key, value in {"TRAIN__BASE_MODEL": str(base), "TRAIN__CONFIG": str(short), "TRAIN__DEVICE": "cpu",
                       "GATE__MARGIN": "-1", "GATE__REGRESSION_TOLERANCE": "10", "GATE__MAX_NEW_TOKENS": "8",
                       "SERVE__ADMIN_KEY": "flows-admin", "CURATE__MIN_NEW_EXAMPLES": "1"}.items():
        monkeypatch.setenv(f"FLYWHEEL_{key}", value)
    settings = load_settings()
    settings.ensure_dirs()
    records, feedback = sample_data.interactions(80, seed=41)
    sample_data.write_jsonl(settings.inbox_dir / "week.jsonl", records + feedback)
    return settings


def _rows(settings, sql: str) -> list[tuple]:
    with connect(settings, read_only=True) as con:
        return con.execute(sql).fetchall()


def test_full_turn_is_live_leaves_artifacts_and_reruns_idempotently(flow_settings, prefect_server):
    from flows.flywheel import flywheel_flow

    with running_server(flow_settings) as url:
        turn = flywheel_flow(serve_url=url)
        assert turn["dataset_version"] == "v1" and turn["adapter_version"] == "v1"
        assert turn["decision"] == "promote" and turn["deployed"] == "v1"
        assert dict(turn["steps"])["PII entities found and replaced"] > 0
        import httpx

        assert httpx.get(f"{url}/health").json()["production"] == "v1"

        again = flywheel_flow(serve_url=url)  # nothing new (the smoke check's own request is no example)
    assert again["new_examples"] == 0 and "deployed" not in again
    assert _rows(flow_settings, "SELECT version, status FROM adapters") == [("v1", "production")]
    assert _rows(flow_settings, "SELECT count(*) FROM dataset_versions") == [(1,)]
    assert _rows(flow_settings, "SELECT count(*) FROM deployments WHERE status = 'succeeded'") == [(1,)]
    for key in ("collect-summary", "curate-funnel", "curate-scrub", "curate-dedup", "curate-hap", "retrain-report",
                "retrain-metrics", "deployment-result", "flywheel-funnel"):
        assert read_artifacts(key), f"no artifact {key}"
    stages = [row["stage"] for row in artifact_data("flywheel-funnel")]
    assert stages[0].startswith("ingested") and "scrub" in stages and "hap" in stages


def test_training_failure_leaves_production_unchanged(flow_settings, prefect_server, monkeypatch):
    from flows.flywheel import flywheel_flow

    with running_server(flow_settings) as url:
        flywheel_flow(serve_url=url)  # v1 in production
        more, feedback = sample_data.interactions(60, seed=43)
        collect(flow_settings, [sample_data.write_jsonl(flow_settings.inbox_dir / "week2.jsonl", more + feedback)])

        import training.retrain

        def broken(*args, **kwargs):
            raise RuntimeError("CUDA out of memory (injected)")

        monkeypatch.setattr(training.retrain, "train_sft", broken)  # where retrain looks it up
        with pytest.raises(RuntimeError, match="injected"):
            flywheel_flow(serve_url=url)
        import httpx

        assert httpx.get(f"{url}/health").json()["production"] == "v1"
    assert _rows(flow_settings, "SELECT version, status FROM adapters") == [("v1", "production")]
    assert _rows(flow_settings, "SELECT status FROM training_runs ORDER BY started_at") == [("succeeded",),
                                                                                           ("failed",)]


@pytest.mark.base("small_base")
def test_failed_smoke_check_rolls_back_to_what_served_before(flow_settings, prefect_server):
    from flows.deploy import SmokeCheckFailed
    from flows.flywheel import flywheel_flow

    with running_server(flow_settings) as url:
        with pytest.raises(SmokeCheckFailed, match="non-empty answer"):
            flywheel_flow(serve_url=url)
        import httpx

        assert httpx.get(f"{url}/health").json()["production"] is None  # the base model serves again
    assert _rows(flow_settings, "SELECT version, status FROM adapters") == [("v1", "retired")]
    assert [r[0] for r in _rows(flow_settings, "SELECT action FROM deployments ORDER BY created_at")] == [
        "promote", "rollback"]
    assert "rolled back" in artifact_data("deployment-result")


def test_dataset_ready_event_starts_retrain(flow_settings, prefect_server):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.events import emit_event

    from flows.deployments import DATASET_READY, build_deployments

    deployments = {d.name: d for d in build_deployments(flow_settings)}
    retrain = deployments["on-dataset-ready"]
    deployment_id = retrain.apply()

    async def runs():
        async with get_client() as client:
            return await client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))

    # The server's trigger service picks a new automation up a little after the deployment is applied (in a
    # long session, seconds): an event that arrives before that is not matched, so the test sends it again
    # until a run appears (in production the deployment is registered long before a curate run emits it).
    started = time.monotonic()
    found, sent = [], 0
    while time.monotonic() < started + 90 and not found:
        if time.monotonic() >= started + 10 * sent:
            emit_event(event=DATASET_READY, resource={"prefect.resource.id": "flywheel.dataset.v7"},
                       payload={"uri": "/data/v7", "version": "v7"})
            sent += 1
        found = asyncio.run(runs())
        time.sleep(1)
    assert found, "the dataset-ready event did not create a retrain run"
    assert found[0].parameters["dataset_version"] == "v7"


def test_deployments_schedules_trigger_and_gpu_queue(flow_settings, prefect_server):
    from prefect.client.orchestration import get_client

    from flows.deployments import register_deployments

    names = register_deployments(flow_settings)
    assert set(names) == {"collect_feedback/hourly", "curate/weekly", "retrain/on-dataset-ready",
                          "deploy/promote", "flywheel/one-turn"}

    async def inspect():
        async with get_client() as client:
            retrain = await client.read_deployment_by_name("retrain/on-dataset-ready")
            collect_dep = await client.read_deployment_by_name("collect_feedback/hourly")
            queue = await client.read_work_queue_by_name(name="gpu", work_pool_name="gpu")
            return retrain, collect_dep, queue

    retrain, collect_dep, queue = asyncio.run(inspect())
    assert retrain.work_pool_name == "gpu" and queue.concurrency_limit == 1
    assert retrain.schedules[0].schedule.cron == flow_settings.flows.retrain_cron
    assert collect_dep.schedules[0].schedule.cron == "0 * * * *"
    assert collect_dep.schedules[0].schedule.timezone == "UTC"

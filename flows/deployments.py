"""Deployments of the flywheel's flows: schedules, the dataset-ready trigger, the GPU queue.

Two ways to run them, the same definitions:

* ``flywheel flows serve`` — one long-running process serves every deployment (good for one machine);
  ``retrain`` has a deployment concurrency limit of 1 there.
* ``flywheel flows register`` — creates the ``cpu`` and ``gpu`` process work pools (the ``gpu`` queue
  with a concurrency limit of 1) and registers the deployments on them, for workers on other hosts
  (see ``infra/``). ``infra/prefect.yaml`` says the same for ``prefect deploy``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows.collect import collect_feedback
from flows.curate import DATASET_READY, curate_flow
from flows.deploy import deploy_flow
from flows.flywheel import flywheel_flow
from flows.retrain import retrain_flow
from flywheel.settings import Settings

__all__ = ["DATASET_READY", "build_deployments", "register_deployments", "serve_deployments"]
PROJECT_ROOT = Path(__file__).resolve().parents[1]
GPU_POOL, CPU_POOL = "gpu", "cpu"


def build_deployments(settings: Settings, work_pools: bool = False) -> list[Any]:
    """RunnerDeployments for every flow; with ``work_pools`` they target the cpu/gpu pools."""
    from prefect.events import DeploymentEventTrigger
    from prefect.schedules import Cron

    tz = settings.flows.timezone

    def pool(name: str) -> dict[str, Any]:
        if not work_pools:
            return {}
        return {"work_pool_name": name, "work_queue_name": name, "job_variables": {"working_dir": str(PROJECT_ROOT)}}

    return [
        collect_feedback.to_deployment(
            "hourly", schedules=[Cron(settings.flows.collect_cron, timezone=tz)], tags=["flywheel", "io"],
            **pool(CPU_POOL)),
        curate_flow.to_deployment(
            "weekly", schedules=[Cron(settings.flows.curate_cron, timezone=tz)], tags=["flywheel"], **pool(CPU_POOL)),
        retrain_flow.to_deployment(
            "on-dataset-ready", schedules=[Cron(settings.flows.retrain_cron, timezone=tz)],
            triggers=[DeploymentEventTrigger(
                name="retrain when a dataset is ready", expect={DATASET_READY},
                parameters={"dataset_version": "{{ event.payload.version }}"})],
            concurrency_limit=1, tags=["flywheel", "gpu"], **pool(GPU_POOL)),
        deploy_flow.to_deployment("promote", tags=["flywheel"], **pool(CPU_POOL)),
        flywheel_flow.to_deployment("one-turn", tags=["flywheel"], **pool(CPU_POOL)),
    ]


def serve_deployments(settings: Settings) -> None:
    """Serve every deployment from this process until interrupted."""
    from prefect import serve

    serve(*build_deployments(settings))


def register_deployments(settings: Settings) -> list[str]:
    """Create the work pools (gpu queue limited to 1 run) and register the deployments; returns their names."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkQueueUpdate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    async def ensure_pools() -> None:
        async with get_client() as client:
            for name, limit in ((CPU_POOL, None), (GPU_POOL, 1)):
                try:
                    await client.create_work_pool(WorkPoolCreate(name=name, type="process"))
                except ObjectAlreadyExists:
                    pass
                try:
                    queue = await client.read_work_queue_by_name(name=name, work_pool_name=name)
                except ObjectNotFound:
                    queue = await client.create_work_queue(name=name, work_pool_name=name)
                await client.update_work_queue(queue.id, **WorkQueueUpdate(concurrency_limit=limit).model_dump(
                    exclude_unset=True))

    asyncio.run(ensure_pools())
    names = []
    for deployment in build_deployments(settings, work_pools=True):
        deployment.apply()
        names.append(f"{deployment.flow_name}/{deployment.name}")
    return names

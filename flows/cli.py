"""CLI commands owned by the flows package: ``flows serve|register|run``.

The flow modules import Prefect (seconds), so each command imports its flow module when it runs, not when
``flywheel --help`` does.
"""

from __future__ import annotations

import json

import typer

from flywheel.settings import load_settings

app = typer.Typer(name="flows", help="Prefect deployments of the flywheel's flows.", no_args_is_help=True)


@app.command("serve")
def serve() -> None:
    """Serve every deployment (schedules + dataset-ready trigger) from this process until Ctrl-C."""
    from flows.deployments import serve_deployments

    serve_deployments(load_settings())


@app.command("register")
def register() -> None:
    """Create the cpu/gpu work pools (gpu limited to 1 run) and register the deployments for workers."""
    from flows.deployments import register_deployments

    for name in register_deployments(load_settings()):
        typer.echo(f"registered {name}")


@app.command("run")
def run(serve_url: str = typer.Option(None, help="Model server to deploy to (default: settings)")) -> None:
    """Run one full turn of the flywheel flow now: collect, curate, retrain, gate, deploy."""
    from flows.flywheel import flywheel_flow

    typer.echo(json.dumps(flywheel_flow(serve_url=serve_url), indent=2, default=str))

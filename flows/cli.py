"""CLI commands owned by the flows package: ``flows serve|register|run``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    flows_app = typer.Typer(help="Prefect deployments of the flywheel's flows.", no_args_is_help=True)
    app.add_typer(flows_app, name="flows")

    @flows_app.command("serve")
    def flows_serve() -> None:
        """Serve every deployment (schedules + dataset-ready trigger) from this process until Ctrl-C."""
        from flows.deployments import serve_deployments
        from flywheel.settings import load_settings

        serve_deployments(load_settings())

    @flows_app.command("register")
    def flows_register() -> None:
        """Create the cpu/gpu work pools (gpu limited to 1 run) and register the deployments for workers."""
        from flows.deployments import register_deployments
        from flywheel.settings import load_settings

        for name in register_deployments(load_settings()):
            typer.echo(f"registered {name}")

    @flows_app.command("run")
    def flows_run(serve_url: str = typer.Option(None, help="Model server to deploy to (default: settings)")) -> None:
        """Run one full turn of the flywheel flow now: collect, curate, retrain, gate, deploy."""
        import json

        from flows.flywheel import flywheel_flow

        typer.echo(json.dumps(flywheel_flow(serve_url=serve_url), indent=2, default=str))

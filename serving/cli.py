"""CLI commands owned by the serving package: ``serve``, ``deploy``, ``rollback`` (and ``review``).

Each command parses its options and calls one library function; the server modules import FastAPI and
uvicorn, so they are imported when a command runs, not when ``flywheel --help`` does.
"""

from __future__ import annotations

import typer

from flywheel.settings import load_settings
from serving.review import cli as review_cli


def serve(
    host: str = typer.Option(None, help="Address to bind; default serve.host (127.0.0.1)"),
    port: int = typer.Option(None, help="Port; default serve.port (8000)"),
) -> None:
    """Run the OpenAI-compatible model server (base model + LoRA adapters, hot-swappable)."""
    import logging

    from rich.console import Console

    from serving import http
    from serving.app import bind_warnings, create_app
    from serving.deploy import production_version
    from training.base_model import ensure_base_model

    settings = load_settings()
    settings.ensure_dirs()
    host = host or settings.serve.host
    console = Console(stderr=True)
    for warning in bind_warnings(settings, host):
        console.print(f"[bold red]WARNING[/] {warning}")
    ensure_base_model(settings)  # built here, with a progress bar, on first use
    production = production_version(settings)  # read before the server starts, connection closed
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    http.run(create_app(settings, production_hint=production), host, port or settings.serve.port)


def deploy(
    adapter: str = typer.Option(..., "--adapter", help="Registry version to make production, e.g. v3"),
    url: str = typer.Option(None, help="Server URL; default the local model server from settings"),
    target: str = typer.Option("local", help="local (flywheel model server) or vllm (runtime LoRA API)"),
    vllm_adapter_root: str = typer.Option(
        None, help="vllm target: the adapter registry directory as the vLLM host sees it"),
) -> None:
    """Load, smoke-test and promote an adapter on a running server, then record it in the warehouse."""
    from serving.deploy import DeployError
    from serving.deploy import deploy as deploy_adapter

    try:
        result = deploy_adapter(load_settings(), adapter, url=url, target=target, vllm_adapter_root=vllm_adapter_root)
    except DeployError as exc:
        typer.echo(f"flywheel deploy: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"deployed {result['version']} to {target} (previous production: {result['previous'] or 'none'})")


def rollback(
    url: str = typer.Option(None, help="Server URL; default the local model server from settings"),
) -> None:
    """Make the previous production adapter live again on a running server, and record it."""
    from serving.deploy import DeployError
    from serving.deploy import rollback as rollback_adapter

    try:
        result = rollback_adapter(load_settings(), url=url)
    except DeployError as exc:
        typer.echo(f"flywheel rollback: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"rolled back to {result['version'] or 'the base model'} (retired {result['retired']})")


def register(app: typer.Typer) -> None:
    review_cli.register(app)
    app.command("serve")(serve)
    app.command("deploy")(deploy)
    app.command("rollback")(rollback)

"""CLI commands owned by the serving package: ``serve``, ``deploy`` and ``rollback`` (``review`` is
``serving.review.cli``).

Each command parses its options and calls one library function (``serving.app.serve``, ``serving.deploy``);
the flows and the tests call the same ones. ``serving.app`` builds the FastAPI app, so ``serve`` imports it
when it runs, not when ``flywheel --help`` does.
"""

from __future__ import annotations

import typer
from rich.console import Console

from flywheel.settings import load_settings
from serving import deploy as deployment
from serving.http import model_server_warnings

app = typer.Typer()


@app.command("serve")
def serve(
    host: str = typer.Option(None, help="Address to bind; default serve.host (127.0.0.1)"),
    port: int = typer.Option(None, help="Port; default serve.port (8000)"),
) -> None:
    """Run the OpenAI-compatible model server (base model + LoRA adapters, hot-swappable)."""
    from serving.app import serve as run_server

    settings = load_settings()
    host = host or settings.serve.host
    for warning in model_server_warnings(settings, host):
        Console(stderr=True).print(f"[bold red]WARNING[/] {warning}")
    run_server(settings, host, port or settings.serve.port)


@app.command("deploy")
def deploy(
    adapter: str = typer.Option(..., "--adapter", help="Registry version to make production, e.g. v3"),
    url: str = typer.Option(None, help="Server URL; default the local model server from settings"),
    target: str = typer.Option("local", help="local (flywheel model server) or vllm (runtime LoRA API)"),
    vllm_adapter_root: str = typer.Option(
        None, help="vllm target: the adapter registry directory as the vLLM host sees it"),
) -> None:
    """Load, smoke-test and promote an adapter on a running server, then record it in the warehouse."""
    try:
        result = deployment.deploy(load_settings(), adapter, url=url, target=target,
                                   vllm_adapter_root=vllm_adapter_root)
    except deployment.DeployError as exc:
        typer.echo(f"flywheel deploy: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"deployed {result['version']} to {target} (previous production: {result['previous'] or 'none'})")


@app.command("rollback")
def rollback(
    url: str = typer.Option(None, help="Server URL; default the local model server from settings"),
) -> None:
    """Make the previous production adapter live again on a running server, and record it."""
    try:
        result = deployment.rollback(load_settings(), url=url)
    except deployment.DeployError as exc:
        typer.echo(f"flywheel rollback: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"rolled back to {result['version'] or 'the base model'} (retired {result['retired']})")

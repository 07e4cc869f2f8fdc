"""``flywheel demo`` (added through the ``flywheel.commands`` entry point: ``register``) and ``python -m demo``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from demo.run import MODELS, gate_reasons, load_result, report_table, run_demo
from flywheel.settings import load_settings
from training.prepared import ModelNotAvailable

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command("demo")
def demo(
    model: str = typer.Option("tiny", "--model", help="tiny: the demo's 1.8M-parameter model (minutes); "
                              "smollm2: SmolLM2-135M-Instruct from its package (see `flywheel model prepare`)"),
    ui: bool = typer.Option(True, "--ui/--no-ui", help="Start the Prefect server and UI on 127.0.0.1:4200"),
    keep_running: bool = typer.Option(False, "--keep-running", help="Leave the UI and model server up"),
    conversations: int = typer.Option(240, help="Simulated conversations per week"),
    report: Path = typer.Option(None, "--report", help="Print the table of a saved run (demo-result.json) "
                                "and exit"),
) -> None:
    """Two simulated weeks of the whole flywheel, then a before/after table with n and 95% intervals."""
    if model not in MODELS:
        typer.echo(f"flywheel demo: --model {model!r} is not one of {', '.join(MODELS)}", err=True)
        raise typer.Exit(2)
    console = Console(width=None if Console().is_terminal else 160)  # a log file gets the whole table
    if report is not None:
        console.print(report_table(load_result(report)))
        for line in gate_reasons(load_result(report)):
            console.print(line)
        return
    try:
        result = run_demo(load_settings(), model=model, ui=ui, keep_running=keep_running,
                          conversations=conversations, console=console)
    except ModelNotAvailable as exc:
        typer.echo(f"flywheel demo: {exc}", err=True)
        raise typer.Exit(1) from None
    console.print(report_table(result))
    for line in gate_reasons(result):
        console.print(line)
    console.print(f"finished in {result.seconds / 60:.1f} min")
    if result.ui_url:
        console.print(f"every run, its logs and artifacts: {result.ui_url}")


def register(target: typer.Typer) -> None:
    """The ``flywheel.commands`` entry point: adds ``demo`` to the ``flywheel`` command."""
    target.add_typer(app)


def main() -> None:
    app(prog_name="python -m demo")

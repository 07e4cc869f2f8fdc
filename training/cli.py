"""CLI commands owned by the training package: ``flywheel train``, ``flywheel eval`` and ``flywheel model``.

Each command parses its options, calls the library function the Prefect flow and the tests call too
(``training.retrain``, ``training.prepared``) and prints a short table; none of them holds logic of its own.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from flywheel.settings import load_settings
from training.config import RecipeError
from training.prepared import ModelNotAvailable, prepare
from training.registry import AdapterError
from training.report import metric_rows
from training.retrain import evaluate_adapter, retrain

app = typer.Typer()
model_app = typer.Typer(help="Real pretrained models that ship in packages.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@model_app.command("prepare")
def model_prepare(name: str = typer.Argument(..., help="Packaged model to prepare: smollm2")) -> None:
    """Convert a packaged model (GGUF) into a HF directory under FLYWHEEL_HOME/models, once; prints its path.

    Use it with `train.base_model: NAME` (or the printed path). The package must be installed without its
    own dependencies; if it is missing, the exact pip command is printed.
    """
    try:
        path = prepare(load_settings(), name)
    except ModelNotAvailable as exc:
        typer.echo(f"flywheel model prepare: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(str(path))


@app.command("train")
def train(
    dataset: str = typer.Option(..., "--dataset", help="Dataset version to train on, e.g. v3"),
    config: Path = typer.Option(None, "--config", help="Recipe YAML (default: training/configs/tiny.yaml)"),
    promote: bool = typer.Option(False, "--promote", help="Mark the adapter production if the gate passes "
                                 "(normally `flywheel deploy` does, after the server accepted it)"),
) -> None:
    """SFT then DPO on a dataset version -> candidate adapter, evaluated and gated against production."""
    try:
        result = retrain(load_settings(), dataset, config, promote=promote)
    except (RecipeError, AdapterError) as exc:
        typer.echo(f"flywheel train: {exc}", err=True)
        raise typer.Exit(1) from None
    print_metrics(f"adapter {result.adapter_version}: {result.decision.upper()}", result.candidate,
                  result.reference, result.reference_name, result.reasons)
    typer.echo(f"report: {result.report_path}")


@app.command("eval")
def evaluate(
    adapter: str = typer.Option(..., "--adapter", help="Registered adapter version, e.g. v4"),
    against: str = typer.Option("production", "--against", help="production | base | a version such as v3"),
    dataset: str = typer.Option(None, "--dataset", help="Held-out splits of this dataset version "
                                "(default: the one the adapter was trained on)"),
    config: Path = typer.Option(None, "--config", help="Recipe YAML (its DPO beta is used for the reward margin; "
                                "the gate reads settings `gate:`)"),
) -> None:
    """Evaluate an adapter against production (or base / another version); records the gate decision."""
    try:
        evaluation = evaluate_adapter(load_settings(), adapter, against, dataset, config)
    except (RecipeError, AdapterError) as exc:
        typer.echo(f"flywheel eval: {exc}", err=True)
        raise typer.Exit(1) from None
    name = evaluation.reference_name
    print_metrics(f"adapter {adapter} vs {name}: {evaluation.gate.decision.upper()}", evaluation.candidate,
                  evaluation.reference, name, evaluation.gate.reasons)


def print_metrics(title: str, candidate: dict, reference: dict, reference_name: str, reasons: list[str]) -> None:
    table = Table(title=title)
    for column in ("metric", "candidate", reference_name):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for metric in metric_rows(candidate):
        if metric in reference:
            table.add_row(metric, f"{candidate[metric]:.3f}", f"{reference[metric]:.3f}")
    console = Console()
    console.print(table)
    for reason in reasons:
        console.print(f"- {reason}")

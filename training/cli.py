"""CLI commands owned by the training package: ``flywheel train``, ``flywheel eval`` and ``flywheel model``."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    model_app = typer.Typer(help="Real pretrained models that ship in packages.", no_args_is_help=True)
    app.add_typer(model_app, name="model")

    @model_app.command("prepare")
    def _prepare(name: str = typer.Argument(..., help="Packaged model to prepare: smollm2")) -> None:
        """Convert a packaged model (GGUF) into a HF directory under FLYWHEEL_HOME/models, once; prints its path.

        Use it with `train.base_model: NAME` (or the printed path). The package must be installed without its
        own dependencies; if it is missing, the exact pip command is printed.
        """
        from flywheel.settings import load_settings
        from training.prepared import ModelNotAvailable, prepare

        try:
            path = prepare(load_settings(), name)
        except ModelNotAvailable as exc:
            typer.echo(f"flywheel model prepare: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(str(path))

    @app.command("train")
    def _train(
        dataset: str = typer.Option(..., "--dataset", help="Dataset version to train on, e.g. v3"),
        config: Path = typer.Option(None, "--config", help="Recipe YAML (default: training/configs/tiny.yaml)"),
        promote: bool = typer.Option(False, "--promote", help="Mark the adapter production if the gate passes "
                                     "(normally `flywheel deploy` does, after the server accepted it)"),
    ) -> None:
        """SFT then DPO on a dataset version -> candidate adapter, evaluated and gated against production."""
        from flywheel.settings import load_settings
        from training.config import RecipeError
        from training.registry import AdapterError
        from training.retrain import retrain

        try:
            result = retrain(load_settings(), dataset, config, promote=promote)
        except (RecipeError, AdapterError) as exc:
            typer.echo(f"flywheel train: {exc}", err=True)
            raise typer.Exit(1) from None
        _print_metrics(f"adapter {result.adapter_version}: {result.decision.upper()}", result.candidate,
                       result.reference, result.reference_name, result.reasons)
        typer.echo(f"report: {result.report_path}")

    @app.command("eval")
    def _eval(
        adapter: str = typer.Option(..., "--adapter", help="Registered adapter version, e.g. v4"),
        against: str = typer.Option("production", "--against", help="production | base | a version such as v3"),
        dataset: str = typer.Option(None, "--dataset", help="Held-out splits of this dataset version "
                                    "(default: the one the adapter was trained on)"),
        config: Path = typer.Option(None, "--config", help="Recipe YAML (its DPO beta is used for the reward margin; the gate reads settings `gate:`)"),
    ) -> None:
        """Evaluate an adapter against production (or base / another version); records the gate decision."""
        from flywheel.settings import load_settings
        from training import registry
        from training.common import resolve_base_model
        from training.config import RecipeError, load_config
        from training.evaluate import evaluate, record_evaluation
        from training.retrain import dataset_dir

        settings = load_settings()
        try:
            cfg = load_config(config, settings)
            base = resolve_base_model(settings, cfg)
            path = registry.adapter_path(settings, adapter)
            registry.validate_adapter(path, base)
            reference = registry.production_version(settings) if against == "production" else (
                None if against == "base" else against)
            reference_dir = registry.adapter_path(settings, reference) if reference else None
            if reference_dir is not None:
                registry.validate_adapter(reference_dir, base)
            version = dataset or registry.read_metadata(path).get("dataset_version")
            if not version:
                raise RecipeError(f"adapter {adapter} records no dataset version; pass --dataset vN")
            name = f"production {reference}" if against == "production" and reference else (reference or "base")
            evaluation = evaluate(settings, cfg, base, path, reference_dir, dataset_dir(settings, version), name)
        except (RecipeError, registry.AdapterError) as exc:
            typer.echo(f"flywheel eval: {exc}", err=True)
            raise typer.Exit(1) from None
        record_evaluation(settings, adapter, reference, evaluation)
        _print_metrics(f"adapter {adapter} vs {name}: {evaluation.gate.decision.upper()}", evaluation.candidate,
                       evaluation.reference, name, evaluation.gate.reasons)


def _print_metrics(title: str, candidate: dict, reference: dict, reference_name: str, reasons: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    from training.report import metric_rows

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

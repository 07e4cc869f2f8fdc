"""CLI commands owned by the curation package: ``curate``, ``dedup``, ``import-data`` (and the safety steps)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    from curation import safety_cli

    safety_cli.register(app)

    @app.command("dedup")
    def dedup(
        in_path: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL input; records carry 'id'"),
        out_path: Path = typer.Option(..., "-o", "--output", help="JSONL output, same order as the input"),
        field: str = typer.Option("text", "--field", help="Key holding the text; dotted paths walk lists, "
                                                          "e.g. messages.content"),
        annotate: bool = typer.Option(False, "--annotate", help="Keep every record and add 'dup_of' "
                                                                "(id of the record it duplicates, or null)"),
        threshold: float = typer.Option(None, "--threshold", help="Jaccard threshold (default from settings)"),
    ) -> None:
        """Remove exact and near duplicates (MinHash LSH), keeping the first occurrence."""
        from curation.dedup import dedup_jsonl
        from flywheel.settings import load_settings

        settings = load_settings().dedup
        if threshold is not None:
            settings = settings.model_copy(update={"threshold": threshold})
        step = dedup_jsonl(in_path, out_path, settings, field=field, annotate=annotate)
        for ex in step.exclusions.items[:20]:
            typer.echo(f"{in_path}: skipped: {ex.reason}", err=True)
        stats = step.stats
        typer.echo(f"{stats['input']} records: {stats['exact']} exact and {stats['near']} near duplicates "
                   f"{'marked' if annotate else 'removed'}, {stats['invalid']} invalid; wrote {out_path}", err=True)

    @app.command("curate")
    def curate(
        since: datetime = typer.Option(None, help="Only interactions at or after this time (ISO 8601)"),
        until: datetime = typer.Option(None, help="Only interactions before this time (ISO 8601)"),
        no_mine: bool = typer.Option(False, "--no-mine", help="Skip bad-case mining (use the queue as it is)"),
        as_json: bool = typer.Option(False, "--json", help="Machine-readable output"),
    ) -> None:
        """Mine bad cases, build SFT/DPO examples, scrub, dedup, HAP-filter and write dataset version vN."""
        from rich.console import Console
        from rich.table import Table

        from curation.pipeline import curate as run_curate
        from flywheel.settings import load_settings

        result = run_curate(load_settings(), since, until, mine_first=not no_mine)
        if as_json:
            typer.echo(json.dumps(result.as_dict(), default=str))
            return
        table = Table(title=f"flywheel curate: {result.message}")
        for column in ("stage", "in", "out"):
            table.add_column(column, justify="left" if column == "stage" else "right")
        for stage, n_in, n_out in result.funnel:
            table.add_row(stage, str(n_in), str(n_out))
        table.add_row("quarantined (with reasons)", "", str(result.quarantined))
        Console().print(table)
        if result.uri:
            typer.echo(result.uri)

    @app.command("import-data")
    def import_data(
        path: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL file or JSON array"),
        fmt: str = typer.Option("auto", "--format", help="auto | alpaca | sharegpt | messages | dpo"),
        use_as: str = typer.Option("seed", "--as", help="seed: new examples of the next version; "
                                                        "replay: only sampled as replay"),
    ) -> None:
        """Import an existing dataset as seed or replay data (validated, scrubbed, HAP-filtered)."""
        from curation.importers import FORMATS, import_file
        from flywheel.settings import load_settings

        if fmt not in FORMATS or use_as not in ("seed", "replay"):
            typer.echo(f"--format must be one of {', '.join(FORMATS)} and --as seed or replay", err=True)
            raise typer.Exit(2)
        result = import_file(load_settings(), path, fmt, use_as)
        typer.echo(f"{path}: read {result.read}, added {result.added} ({result.by_kind}), already present "
                   f"{result.already_present}, quarantined {result.quarantined}")

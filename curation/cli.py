"""CLI commands owned by the curation package: ``curate``, ``dedup``, ``import-data`` (and the safety steps)."""

from __future__ import annotations

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

    @app.command("curate", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def _curate() -> None:
        """Not built yet."""
        from flywheel.cli import not_built

        not_built("curate", "Curation pipeline / Data safety issues")

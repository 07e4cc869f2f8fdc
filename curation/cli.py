"""CLI commands of the curation stage: ``curate``, ``dedup``, ``scrub``, ``hap``, ``purge``, ``import-data``
(and ``export``).

Each command parses its arguments, calls the library function that the Prefect flows and the tests call
too, and prints a short table; long work shows a progress bar.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from curation.dedup import Dedup
from curation.executor import run_on_jsonl
from curation.export import ExportError, export_version
from curation.hap import score_jsonl
from curation.importers import (
    FORMAT_ALIASES,
    FORMATS,
    USE_AS,
    ImportError_,
    import_dataset_info,
    import_file,
    is_dataset_info,
)
from curation.pii import scrub_jsonl
from curation.pipeline import curate as run_curate
from curation.step import report_rows
from flywheel.settings import load_settings

app = typer.Typer()
console = Console(stderr=True)
FIELD_HELP = "Field to process (repeatable): a string or a list of chat messages {role, content}"


@contextmanager
def progress_bars() -> Iterator[Callable[[str, int, int], None]]:
    """A ``progress(stage, done, total)`` callback drawing one rich bar per stage on stderr."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as bars:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(stage, total=total)
            bars.update(tasks[stage], completed=done, total=total)

        yield update


def summary(title: str, rows: list[tuple[str, Any]]) -> None:
    table = Table(title=title)
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, value in rows:
        table.add_row(key, str(value))
    console.print(table)


def _input_file(command: str, path: Path) -> None:
    if not path.is_file():
        typer.echo(f"flywheel {command}: input {path} does not exist; pass a JSONL file", err=True)
        raise typer.Exit(2)


@app.command("curate")
def curate(
    since: datetime = typer.Option(None, help="Only interactions at or after this time (ISO 8601)"),
    until: datetime = typer.Option(None, help="Only interactions before this time (ISO 8601)"),
    no_mine: bool = typer.Option(False, "--no-mine", help="Skip bad-case mining (use the queue as it is)"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output"),
) -> None:
    """Mine bad cases, build SFT/DPO examples, run the curation steps (dedup, scrub, HAP) and write vN."""

    with progress_bars() as progress:
        result = run_curate(load_settings(), since, until, mine_first=not no_mine, progress=progress)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), default=str))
        return
    table = Table(title=f"flywheel curate: {result.message}")
    for column in ("stage", "in", "out"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage, n_in, n_out in result.funnel:
        table.add_row(stage, str(n_in), str(n_out))
    table.add_row("quarantined (with reasons)", "", str(result.quarantined))
    console.print(table)
    for stats in result.steps:
        rows = report_rows(stats)
        step_table = Table(title=f"{stats['name']} ({stats['seconds']:.1f} s)")
        for column in rows[0] if rows else ():
            step_table.add_column(column, justify="left" if column == "what" else "right")
        for row in rows:
            step_table.add_row(*(str(v) for v in row.values()))
        console.print(step_table)
    if result.uri:
        typer.echo(result.uri)


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

    settings = load_settings().dedup
    if threshold is not None:
        settings = settings.model_copy(update={"threshold": threshold})
    with progress_bars() as progress:
        step = run_on_jsonl(Dedup(settings, field=field, annotate=annotate), in_path, out_path, progress)
    for ex in step.exclusions.items[:20]:
        typer.echo(f"{in_path}: skipped: {ex.reason}", err=True)
    stats = step.stats
    typer.echo(f"{stats.n_in} records: {stats.counts['exact']} exact and {stats.counts['near']} near duplicates "
               f"{'marked' if annotate else 'removed'}, {stats.dropped['invalid']} invalid; wrote {out_path}",
               err=True)


@app.command("scrub")
def scrub(
    src: Path = typer.Argument(..., help="Input JSONL"),
    out: Path = typer.Option(..., "--out", "-o", help="Output JSONL: same records, same order, scrubbed"),
    field: list[str] = typer.Option(["text"], "--field", "-f", help=FIELD_HELP),
    audit: Path = typer.Option(None, "--audit", help="Also write the audit (counts per entity type) as JSON"),
    as_json: bool = typer.Option(False, "--json", help="Print the audit as JSON"),
) -> None:
    """Replace personal data (names, emails, phones, addresses, cards, IDs, ...) with surrogates."""

    _input_file("scrub", src)
    with progress_bars() as progress:
        report = scrub_jsonl(load_settings(), src, out, field, progress)
    if audit:
        audit.write_text(json.dumps(report, indent=2) + "\n")
    if as_json:
        typer.echo(json.dumps(report))
        return
    rows = [(k, v) for k, v in report.items() if k != "entities"]
    summary(f"scrub {src} -> {out}", rows + [(f"entity {k}", v) for k, v in report["entities"].items()])


@app.command("hap")
def hap(
    src: Path = typer.Argument(..., help="Input JSONL"),
    out: Path = typer.Option(..., "--out", "-o", help="Output JSONL: same records, same order, plus hap_score"),
    field: list[str] = typer.Option(["text"], "--field", "-f", help=FIELD_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON"),
) -> None:
    """Score hate/abuse/profanity: adds hap_score in [0, 1] (max over fields and sentences) to each record."""

    _input_file("hap", src)
    settings = load_settings()
    try:
        with progress_bars() as progress:
            stats = score_jsonl(settings, src, out, field, progress)
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(f"flywheel hap: {exc}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps(stats))
        return
    summary(f"hap {src} -> {out} (threshold {settings.hap.threshold})", list(stats.items()))


@app.command("import-data")
def import_data(
    path: Path = typer.Argument(..., exists=True, dir_okay=False,
                                help="JSON / JSONL / Parquet / text file, or a LLaMA-Factory dataset_info.json"),
    fmt: str = typer.Option("auto", "--format", help="auto | alpaca | sharegpt | openai (alias messages, v1) | dpo; "
                                                     "ignored for a dataset_info.json, whose entries say"),
    use_as: str = typer.Option("seed", "--as", help="seed: new examples of the next version; "
                                                    "replay: only sampled as replay"),
    datasets: list[str] = typer.Option(None, "--dataset", help="with a dataset_info.json: import only this "
                                                               "entry (repeatable)"),
) -> None:
    """Import an existing dataset as seed or replay data (validated, scrubbed, HAP-filtered); every layout
    LLaMA-Factory documents, auto-detected per row or named with --format."""

    if fmt not in FORMATS + tuple(FORMAT_ALIASES) or use_as not in USE_AS:
        typer.echo(f"--format must be one of {', '.join(FORMATS + tuple(FORMAT_ALIASES))} and --as seed or replay",
                   err=True)
        raise typer.Exit(2)
    settings = load_settings()
    try:
        results = (import_dataset_info(settings, path, datasets or None, use_as) if is_dataset_info(path)
                   else {str(path): import_file(settings, path, fmt, use_as)})
    except ImportError_ as exc:
        typer.echo(f"flywheel import-data: {exc}", err=True)
        raise typer.Exit(2) from None
    for name, result in results.items():
        if isinstance(result, str):
            typer.echo(f"{name}: not imported: {result}", err=True)
            continue
        typer.echo(f"{name}: read {result.read}, converted {result.converted} {result.converted_by_layout}, "
                   f"refused {result.refused}; examples {result.built}, filtered {result.filtered}, added "
                   f"{result.added}, already present {result.already_present}")
        for reason, n in list(result.reasons.items())[:10]:
            typer.echo(f"  quarantined {n}: {reason}", err=True)


@app.command("export")
def export(
    version: str = typer.Argument(..., help="dataset version, e.g. v3 (see `flywheel status`)"),
    fmt: str = typer.Option("llamafactory", "--format", help="llamafactory (JSONL + dataset_info.json) | sharegpt "
                                                            "| alpaca | openai (JSONL)"),
    out_dir: Path = typer.Option(..., "-o", "--output", help="directory to write to (created if needed)"),
) -> None:
    """Export a dataset version's SFT and DPO splits for another trainer (LLaMA-Factory, or JSON Lines)."""

    try:
        result = export_version(load_settings(), version, fmt, out_dir)
    except ExportError as exc:
        typer.echo(f"flywheel export: {exc}", err=True)
        raise typer.Exit(2) from None
    for name, n in result.files.items():
        typer.echo(f"{out_dir / name}: {n} rows")
    if result.dataset_info:
        typer.echo(f"{result.dataset_info}: dataset entries flywheel_{version}_<sft|dpo>_<train|eval>")
    for reason, n in result.skipped.items():
        typer.echo(f"  left out {n}: {reason}", err=True)

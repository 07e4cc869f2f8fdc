"""CLI commands owned by the collectors package: ``collect``, ``quarantine`` and ``purge`` (raw-text retention).

Each command parses its options, calls one library function (``collectors.ingest.collect``, the
warehouse's quarantine readers) and prints the result; none of them touches a table itself. The
collector loads pyarrow, so it is imported when ``collect`` runs, not when ``flywheel --help`` does.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from collectors.ingest import collect as collect_sources
from collectors.store import purge_raw_text
from flywheel.settings import load_settings
from flywheel.warehouse import quarantined, quarantined_by_id

app = typer.Typer()
quarantine_app = typer.Typer(help="Inspect records that a stage refused, with the reason.", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")


@app.command("collect")
def collect(
    source: list[Path] = typer.Option(None, "--source", "-s",
                                      help="File or directory to ingest (repeatable); default: inbox and spool"),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON"),
) -> None:
    """Ingest interactions and feedback (JSONL, JSONL.GZ, Parquet) into the warehouse; bad lines are quarantined."""

    for path in source or []:
        if not path.exists():
            typer.echo(f"flywheel collect: --source {path} does not exist; pass a file or directory", err=True)
            raise typer.Exit(2)
    summary = collect_sources(load_settings(), sources=source or None, progress=not as_json)
    if as_json:
        typer.echo(json.dumps(summary.as_dict()))
        return
    table = Table(title="collect")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, value in summary.as_rows():
        table.add_row(key, str(value))
    Console().print(table)


@quarantine_app.command("list")
def quarantine_list(
    limit: int = typer.Option(50, help="Rows to show"),
    stage: str = typer.Option(None, help="Only this stage (collect, scrub, dedup, hap, ...)"),
) -> None:
    """Newest quarantined records: id, stage, source:line and reason."""
    rows = quarantined(load_settings(), stage=stage, limit=limit)
    table = Table(title=f"quarantine ({len(rows)} shown)")
    for col in ("id", "stage", "source:line", "reason"):
        table.add_column(col, overflow="fold")
    for row in rows:
        where = f"{row['source']}:{row['line']}" if row["line"] is not None else str(row["source"])
        table.add_row(str(row["id"])[:12], str(row["stage"]), where, str(row["reason"]))
    Console().print(table)  # made per call: it reads the terminal width (COLUMNS) now


@quarantine_app.command("show")
def quarantine_show(qid: str = typer.Argument(..., help="Id (or unique prefix) from `quarantine list`")) -> None:
    """One quarantined record in full: reason, source, line, time and raw text."""
    rows = quarantined_by_id(load_settings(), qid)
    if len(rows) != 1:
        typer.echo(f"flywheel quarantine show: {len(rows)} records match {qid!r}; give a longer id", err=True)
        raise typer.Exit(1)
    row = rows[0]
    Console().print(f"[bold]id[/] {row['id']}\n[bold]stage[/] {row['stage']}\n[bold]source[/] {row['source']}:"
                    f"{row['line']}\n[bold]reason[/] {row['reason']}\n[bold]time[/] {row['created_at']}\n[bold]raw[/]",
                    highlight=False)
    typer.echo(row["raw"])


@app.command("purge")
def purge(
    older_than_days: int = typer.Option(None, "--older-than-days",
                                        help="Retention in days; default scrub.raw_retention_days"),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON"),
) -> None:
    """Delete raw interaction text older than the retention period (curated data is already scrubbed)."""
    try:
        stats = purge_raw_text(load_settings(), older_than_days)
    except ValueError as exc:
        typer.echo(f"flywheel purge: {exc}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps(stats))
        return
    table = Table(title="purge")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, value in stats.items():
        table.add_row(key, str(value))
    Console().print(table)

"""CLI commands owned by the collectors package: ``collect`` and ``quarantine``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table


def register(app: typer.Typer) -> None:
    quarantine_app = typer.Typer(help="Inspect records that a stage refused, with the reason.",
                                 no_args_is_help=True)
    app.add_typer(quarantine_app, name="quarantine")

    @app.command("collect")
    def collect_cmd(
        source: list[Path] = typer.Option(None, "--source", "-s",
                                          help="File or directory to ingest (repeatable); default: inbox and spool"),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON"),
    ) -> None:
        """Ingest interactions and feedback (JSONL, JSONL.GZ, Parquet) into the warehouse; bad lines are quarantined."""
        import json

        from collectors.ingest import collect
        from flywheel.settings import load_settings

        settings = load_settings()
        for path in source or []:
            if not path.exists():
                typer.echo(f"flywheel collect: --source {path} does not exist; pass a file or directory", err=True)
                raise typer.Exit(2)
        summary = collect(settings, sources=source or None, progress=not as_json)
        if as_json:
            typer.echo(json.dumps(summary.as_dict()))
            return
        table = Table(title="collect")
        console = Console()
        table.add_column("what")
        table.add_column("count", justify="right")
        for key, value in summary.as_rows():
            table.add_row(key, str(value))
        console.print(table)

    @quarantine_app.command("list")
    def quarantine_list(
        limit: int = typer.Option(50, help="Rows to show"),
        stage: str = typer.Option(None, help="Only this stage (collect, scrub, dedup, hap, ...)"),
    ) -> None:
        """Newest quarantined records: id, stage, source:line and reason."""
        from flywheel.settings import load_settings
        from flywheel.warehouse import connect

        where, params = ("WHERE stage = ?", [stage]) if stage else ("", [])
        with connect(load_settings()) as con:
            rows = con.execute(
                f"SELECT id, stage, source, line, reason FROM quarantine {where} "
                "ORDER BY created_at DESC, source, line LIMIT ?", [*params, limit]).fetchall()
        table = Table(title=f"quarantine ({len(rows)} shown)")
        console = Console()  # made per call: it reads the terminal width (COLUMNS) now
        for col in ("id", "stage", "source:line", "reason"):
            table.add_column(col, overflow="fold")
        for qid, st, src, line, reason in rows:
            table.add_row(qid[:12], st, f"{src}:{line}" if line is not None else str(src), reason)
        console.print(table)

    @quarantine_app.command("show")
    def quarantine_show(qid: str = typer.Argument(..., help="Id (or unique prefix) from `quarantine list`")) -> None:
        """One quarantined record in full: reason, source, line, time and raw text."""
        from flywheel.settings import load_settings
        from flywheel.warehouse import connect

        with connect(load_settings()) as con:
            rows = con.execute("SELECT id, stage, source, line, reason, created_at, raw FROM quarantine "
                               "WHERE id LIKE ? || '%'", [qid]).fetchall()
        if len(rows) != 1:
            typer.echo(f"flywheel quarantine show: {len(rows)} records match {qid!r}; give a longer id", err=True)
            raise typer.Exit(1)
        qid, st, src, line, reason, created, raw = rows[0]
        Console().print(f"[bold]id[/] {qid}\n[bold]stage[/] {st}\n[bold]source[/] {src}:{line}\n"
                      f"[bold]reason[/] {reason}\n[bold]time[/] {created}\n[bold]raw[/]", highlight=False)
        typer.echo(raw)

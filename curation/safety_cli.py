"""CLI commands of the data-safety steps: ``scrub`` (PII), ``hap`` (scores) and ``purge`` (raw text).

``scrub`` and ``hap`` read JSONL and write JSONL with the same records in the same order; a line
that is not a JSON object is left out and quarantined in the warehouse with its line number.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

console = Console(stderr=True)

FIELD_HELP = "Field to process (repeatable): a string or a list of chat messages {role, content}"


def read_jsonl(path: Path, stage: str, bad: list[Any]) -> Iterator[dict[str, Any]]:
    """Records of a JSONL file; unreadable lines are appended to ``bad`` as warehouse rejections."""
    import orjson

    from flywheel.warehouse import Rejected

    with path.open("rb") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                bad.append(Rejected(stage, f"line {line_no}: not valid JSON ({exc}); fix the line or remove it",
                                    line.decode("utf-8", "replace"), str(path), line_no))
                continue
            if not isinstance(record, dict):
                bad.append(Rejected(stage, f"line {line_no}: a JSON {type(record).__name__}, expected an object",
                                    line.decode("utf-8", "replace"), str(path), line_no))
                continue
            yield record


def count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def quarantine_rejects(settings: Any, rejected: list[Any]) -> int:
    if not rejected:
        return 0
    from flywheel.warehouse import connect, quarantine

    with connect(settings) as con:
        return quarantine(con, rejected, settings.collect.quarantine_raw_chars)


def _check_input(command: str, path: Path) -> None:
    if not path.is_file():
        typer.echo(f"flywheel {command}: input {path} does not exist; pass a JSONL file", err=True)
        raise typer.Exit(2)


def _summary(title: str, rows: list[tuple[str, Any]]) -> None:
    table = Table(title=title)
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, value in rows:
        table.add_row(key, str(value))
    console.print(table)


def run_scrub(settings: Any, src: Path, out: Path, fields: list[str]) -> dict[str, Any]:
    """Scrub ``fields`` of every record of ``src`` into ``out``; returns the audit (counts per entity)."""
    import orjson
    from rich.progress import track

    from curation.pii import Scrub

    bad: list[Any] = []
    step = Scrub(settings.scrub, fields=fields)
    records = track(read_jsonl(src, "scrub", bad), total=count_lines(src), description="scrub",
                    console=console, transient=True)
    tmp = out.with_name(out.name + ".partial")
    with tmp.open("wb") as fh:
        for record in step(records):
            fh.write(orjson.dumps(record) + b"\n")
    tmp.replace(out)
    rejected = bad + step.exclusions.to_rejected(source=str(src))
    quarantined = quarantine_rejects(settings, rejected)
    return {"records_in": step.stats["kept"] + step.stats["dropped"], "records_out": step.stats["kept"],
            "records_changed": step.stats["records_changed"], "dropped": step.stats["dropped"],
            "unreadable_lines": len(bad), "quarantined": quarantined,
            "entities": dict(sorted(step.entity_counts.items()))}


def run_hap(settings: Any, src: Path, out: Path, fields: list[str], batch: int = 256) -> dict[str, Any]:
    """Add ``hap_score`` (max over ``fields``) to every record of ``src``, written to ``out``."""
    import orjson
    from rich.progress import Progress

    from curation.hap import join_text, load_scorer

    bad: list[Any] = []
    scorer = load_scorer(settings.hap, settings.models_dir)
    stats = {"records": 0, "above_threshold": 0}
    tmp = out.with_name(out.name + ".partial")

    def flush(records: list[dict[str, Any]], fh: Any) -> None:
        texts = [join_text(r.get(f)) for r in records for f in fields]
        scores = scorer.score(texts)
        for i, record in enumerate(records):
            record["hap_score"] = round(max(scores[i * len(fields):(i + 1) * len(fields)]), 6)
            stats["above_threshold"] += record["hap_score"] >= settings.hap.threshold
            fh.write(orjson.dumps(record) + b"\n")
        stats["records"] += len(records)

    with tmp.open("wb") as fh, Progress(console=console, transient=True) as progress:
        task = progress.add_task("hap", total=count_lines(src))
        pending: list[dict[str, Any]] = []
        for record in read_jsonl(src, "hap", bad):
            pending.append(record)
            if len(pending) == batch:
                flush(pending, fh)
                progress.advance(task, len(pending))
                pending = []
        if pending:
            flush(pending, fh)
    tmp.replace(out)
    stats["unreadable_lines"] = len(bad)
    stats["quarantined"] = quarantine_rejects(settings, bad)
    return stats


def register(app: typer.Typer) -> None:
    @app.command("scrub")
    def scrub_cmd(
        src: Path = typer.Argument(..., help="Input JSONL"),
        out: Path = typer.Option(..., "--out", "-o", help="Output JSONL: same records, same order, scrubbed"),
        field: list[str] = typer.Option(["text"], "--field", "-f", help=FIELD_HELP),
        audit: Path = typer.Option(None, "--audit", help="Also write the audit (counts per entity type) as JSON"),
        as_json: bool = typer.Option(False, "--json", help="Print the audit as JSON"),
    ) -> None:
        """Replace personal data (names, emails, phones, addresses, cards, IBANs, ...) with surrogates."""
        from flywheel.settings import load_settings

        _check_input("scrub", src)
        report = run_scrub(load_settings(), src, out, field)
        if audit:
            audit.write_text(json.dumps(report, indent=2) + "\n")
        if as_json:
            typer.echo(json.dumps(report))
            return
        rows = [(k, v) for k, v in report.items() if k != "entities"]
        _summary(f"scrub {src} -> {out}", rows + [(f"entity {k}", v) for k, v in report["entities"].items()])

    @app.command("hap")
    def hap_cmd(
        src: Path = typer.Argument(..., help="Input JSONL"),
        out: Path = typer.Option(..., "--out", "-o", help="Output JSONL: same records, same order, plus hap_score"),
        field: list[str] = typer.Option(["text"], "--field", "-f", help=FIELD_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON"),
    ) -> None:
        """Score hate/abuse/profanity: adds hap_score in [0, 1] (max over fields and sentences) to each record."""
        from flywheel.settings import load_settings

        _check_input("hap", src)
        settings = load_settings()
        try:
            stats = run_hap(settings, src, out, field)
        except (ValueError, FileNotFoundError) as exc:
            typer.echo(f"flywheel hap: {exc}", err=True)
            raise typer.Exit(2) from exc
        if as_json:
            typer.echo(json.dumps(stats))
            return
        _summary(f"hap {src} -> {out} (threshold {settings.hap.threshold})", list(stats.items()))

    @app.command("purge")
    def purge_cmd(
        older_than_days: int = typer.Option(None, "--older-than-days",
                                            help="Retention in days; default scrub.raw_retention_days"),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON"),
    ) -> None:
        """Delete raw interaction text older than the retention period (curated data is already scrubbed)."""
        from curation.pii import purge_raw_text
        from flywheel.settings import load_settings

        try:
            stats = purge_raw_text(load_settings(), older_than_days)
        except ValueError as exc:
            typer.echo(f"flywheel purge: {exc}", err=True)
            raise typer.Exit(2) from exc
        if as_json:
            typer.echo(json.dumps(stats))
            return
        _summary("purge", list(stats.items()))

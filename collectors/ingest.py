"""Ingest interactions and feedback from files into the warehouse.

Sources are JSONL, gzip'd JSONL and Parquet files, in an inbox directory and in the spool the model
server writes. Every line is validated (``flywheel.records.parse_record``); a bad one is quarantined
with its raw text, file, line and a one-line reason, and the run goes on. Rows are bulk-loaded through
Arrow and upserted by id, so ingesting the same data twice changes nothing.

Plain JSONL files are read incrementally: the byte offset after the last complete line is stored in
``ingest_state`` in the same transaction as the rows of that batch, so a crash half-way leaves neither
rows nor progress behind, and a file that is still being written is picked up later where it stopped.
"""

from __future__ import annotations

import gc
import gzip
import os
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from flywheel.records import Feedback, Interaction, RecordError, parse_record
from flywheel.settings import Settings
from flywheel.warehouse import Rejected, connect, now, quarantine

SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")
CHUNK_BYTES = 16 * 1024 * 1024
# A last line with no newline that is not valid JSON is quarantined as truncated, but the file offset stays
# before it: if a writer was still at it, the next run reads the completed line, ingests it and deletes
# that quarantine row; if the file never grows, every run finds the same row (same id) and adds nothing.
TRUNCATED_TAIL = "truncated final line (no newline, incomplete JSON)"
NUL, NEWLINE = b"\x00", b"\n"

INTERACTION_SCHEMA = pa.schema([
    ("id", pa.string()), ("ts", pa.timestamp("us", tz="UTC")), ("workload_id", pa.string()),
    ("client_id", pa.string()), ("model", pa.string()), ("adapter", pa.string()), ("messages", pa.string()),
    ("response", pa.string()), ("request", pa.string()), ("latency_ms", pa.float64()),
    ("prompt_tokens", pa.int32()), ("completion_tokens", pa.int32()), ("source", pa.string()),
])
FEEDBACK_SCHEMA = pa.schema([
    ("id", pa.string()), ("interaction_id", pa.string()), ("ts", pa.timestamp("us", tz="UTC")),
    ("kind", pa.string()), ("value", pa.float64()), ("text", pa.string()), ("user_id", pa.string()),
    ("source", pa.string()),
])


@dataclass
class Summary:
    """What one collect run did; shown as a table, returned as JSON, kept as a Prefect artifact."""

    files: int = 0
    records_read: int = 0
    interactions_new: int = 0
    feedback_new: int = 0
    duplicates_skipped: int = 0
    pending_partial_lines: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    def as_dict(self) -> dict[str, Any]:
        return {"files": self.files, "records_read": self.records_read, "interactions_new": self.interactions_new,
                "feedback_new": self.feedback_new, "duplicates_skipped": self.duplicates_skipped,
                "pending_partial_lines": self.pending_partial_lines, "quarantined": self.quarantined_total,
                "quarantined_by_reason": dict(sorted(self.quarantined.items()))}

    def as_rows(self) -> list[tuple[str, int]]:
        rows = [(k, v) for k, v in self.as_dict().items() if k != "quarantined_by_reason"]
        return rows + [(f"  quarantined: {k}", v) for k, v in sorted(self.quarantined.items())]


@dataclass
class Batch:
    """Valid rows and rejected lines of one unit of work, committed together with the file offset."""

    source: str
    retried_line: int | None = None  # first line of this run: it may have been quarantined as a truncated tail
    interactions: dict[str, Interaction] = field(default_factory=dict)
    feedback: dict[str, Feedback] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    records: int = 0
    duplicates: int = 0

    def add_line(self, raw: bytes, line_no: int, max_bytes: int) -> None:
        self.records += 1
        if len(raw) > max_bytes:
            self.reject(raw, line_no, f"record too large: {len(raw)} bytes > {max_bytes} "
                                      "(collect.max_record_bytes); split it or raise the limit")
            return
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            self.reject(raw, line_no, _diagnose(raw, exc))
            return
        self.add_value(value, raw, line_no)

    def add_value(self, value: Any, raw: bytes | str, line_no: int | None) -> None:
        try:
            rec = parse_record(value)
        except RecordError as exc:
            self.reject(raw, line_no, str(exc))
            return
        bucket: dict[str, Any] = self.interactions if isinstance(rec, Interaction) else self.feedback
        if rec.id in bucket:
            self.duplicates += 1
        else:
            bucket[rec.id] = rec

    def reject(self, raw: bytes | str, line_no: int | None, reason: str) -> None:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        self.rejected.append(Rejected("collect", reason, text.replace("\x00", "\\x00"), self.source, line_no))


def _diagnose(raw: bytes, exc: Exception) -> str:
    """A precise one-line reason for a line that is not valid JSON."""
    if b"\x00" in raw:
        return f"NUL byte at column {raw.index(NUL) + 1}; remove NUL bytes from the record"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as ude:
        return f"invalid UTF-8 at byte {ude.start + 1}; re-encode the file as UTF-8"
    return f"invalid JSON: {str(exc).splitlines()[0]}; fix the line or remove it"


def _interaction_rows(batch: Batch) -> pa.Table:
    cols: dict[str, list[Any]] = {name: [] for name in INTERACTION_SCHEMA.names}
    for rec in batch.interactions.values():
        cols["id"].append(rec.id)
        cols["ts"].append(rec.timestamp)
        cols["workload_id"].append(rec.workload_id)
        cols["client_id"].append(rec.client_id)
        cols["model"].append(rec.model)
        cols["adapter"].append(rec.adapter)
        cols["messages"].append(orjson.dumps([{"role": m.role, "content": m.content} for m in rec.messages]).decode())
        cols["response"].append(rec.response)
        cols["request"].append(orjson.dumps(rec.request).decode() if rec.request is not None else None)
        cols["latency_ms"].append(rec.latency_ms)
        cols["prompt_tokens"].append(rec.prompt_tokens)
        cols["completion_tokens"].append(rec.completion_tokens)
        cols["source"].append(batch.source)
    return pa.table(cols, schema=INTERACTION_SCHEMA)


def _feedback_rows(batch: Batch) -> pa.Table:
    cols: dict[str, list[Any]] = {name: [] for name in FEEDBACK_SCHEMA.names}
    for fid, rec in batch.feedback.items():
        cols["id"].append(fid)
        cols["interaction_id"].append(rec.interaction_id)
        cols["ts"].append(rec.timestamp)
        cols["kind"].append(rec.kind)
        cols["value"].append(rec.value)
        cols["text"].append(rec.text)
        cols["user_id"].append(rec.user)
        cols["source"].append(batch.source)
    return pa.table(cols, schema=FEEDBACK_SCHEMA)


def commit_batch(con: Any, batch: Batch, summary: Summary, state: tuple[int, int, int, float, bool] | None,
                 raw_chars: int) -> None:
    """Upsert the batch's rows, quarantine its rejects and advance the file state, all or nothing."""
    con.execute("BEGIN TRANSACTION")
    try:
        new_interactions = _upsert(con, "interactions", _interaction_rows(batch),
                                   "id, ts, workload_id, client_id, model, adapter, messages, response, request, "
                                   "latency_ms, prompt_tokens, completion_tokens, source")
        new_feedback = _upsert(con, "feedback", _feedback_rows(batch),
                               "id, interaction_id, ts, kind, value, text, user_id, source")
        if batch.retried_line is not None:
            con.execute("DELETE FROM quarantine WHERE stage = 'collect' AND source = ? AND line = ? "
                        "AND starts_with(reason, ?)", [batch.source, batch.retried_line, TRUNCATED_TAIL])
        quarantine(con, batch.rejected, raw_chars)
        if state is not None:
            offset, line, size, mtime, done = state
            con.execute(
                'INSERT INTO ingest_state (source, "offset", line, size, mtime, done, updated_at) '
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source) DO UPDATE SET "
                '"offset" = excluded."offset", line = excluded.line, size = excluded.size, '
                "mtime = excluded.mtime, done = excluded.done, updated_at = excluded.updated_at",
                [batch.source, offset, line, size, mtime, done, now()])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    summary.records_read += batch.records
    summary.interactions_new += new_interactions
    summary.feedback_new += new_feedback
    valid = len(batch.interactions) + len(batch.feedback)
    summary.duplicates_skipped += batch.duplicates + valid - new_interactions - new_feedback
    for rej in batch.rejected:
        summary.quarantined[rej.reason.split(":")[0]] += 1


def _upsert(con: Any, table: str, rows: pa.Table, columns: str) -> int:
    if rows.num_rows == 0:
        return 0
    before = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    incoming = rows  # noqa: F841 - read by DuckDB's replacement scan below
    con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM incoming ON CONFLICT DO NOTHING")
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] - before


def discover(paths: Iterable[Path]) -> list[Path]:
    """Ingestible files under the given files/directories, in a stable order."""
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found.update(p for p in path.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))
        elif path.exists():
            found.add(path)
    return sorted(p.resolve() for p in found)


def collect(settings: Settings, sources: list[Path] | None = None, progress: bool = False) -> Summary:
    """Ingest every source (default: the inbox and the spool); returns what was read, added and refused."""
    settings.ensure_dirs()
    files = discover(sources if sources else [settings.inbox_dir, settings.spool_dir])
    summary = Summary()
    with connect(settings) as con, _gc_paused():
        iterator: Iterable[Path] = files
        if progress and files:
            from rich.progress import track

            iterator = track(files, description="collecting", transient=True)
        for path in iterator:
            summary.files += 1
            _ingest_file(con, path, settings, summary)
    return summary


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Batches hold tens of thousands of small objects; cyclic GC passes over them would triple the run time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _ingest_file(con: Any, path: Path, settings: Settings, summary: Summary) -> None:
    source = str(path)
    raw_chars = settings.collect.quarantine_raw_chars
    try:
        stat = path.stat()
    except OSError as exc:
        commit_batch(con, _file_error(source, f"cannot read file: {exc.strerror}; check it exists and is readable"),
                     summary, None, raw_chars)
        return
    row = con.execute('SELECT "offset", line, size, mtime, done FROM ingest_state WHERE source = ?',
                      [source]).fetchone()
    if path.name.endswith(".jsonl") and not path.name.endswith(".jsonl.gz"):
        offset, line = (row[0], row[1]) if row and row[0] <= stat.st_size else (0, 0)
        for batch, state in _jsonl_batches(path, offset, line, stat, settings, summary):
            commit_batch(con, batch, summary, state, raw_chars)
        return
    if row and row[4] and row[2] == stat.st_size and row[3] == stat.st_mtime:
        return  # whole-file formats: unchanged since it was read
    if path.name.endswith(".jsonl.gz"):
        batch = _gzip_batch(path, settings)
    elif path.name.endswith(".parquet"):
        batch = _parquet_batch(path)
    else:
        batch = _file_error(source, "unsupported file type; use .jsonl, .jsonl.gz or .parquet")
    commit_batch(con, batch, summary, (stat.st_size, 0, stat.st_size, stat.st_mtime, True), raw_chars)


def _file_error(source: str, reason: str) -> Batch:
    batch = Batch(source)
    batch.reject(b"", None, reason)
    return batch


def _jsonl_batches(path: Path, offset: int, line: int, stat: os.stat_result, settings: Settings,
                   summary: Summary) -> Iterator[tuple[Batch, tuple[int, int, int, float, bool]]]:
    """Batches of complete lines from ``offset`` on, each with the file state after it."""
    max_bytes = settings.collect.max_record_bytes
    limit = settings.collect.batch_rows
    try:
        fh = open(path, "rb")
    except OSError as exc:
        yield _file_error(str(path), f"cannot read file: {exc.strerror}"), (offset, line, stat.st_size,
                                                                             stat.st_mtime, False)
        return
    with fh:
        fh.seek(offset)
        carry = b""
        batch = Batch(str(path), retried_line=line + 1)
        while True:
            chunk = fh.read(CHUNK_BYTES)
            if not chunk:
                break
            data = carry + chunk
            end = data.rfind(b"\n")
            if end < 0:
                carry = data
                continue
            carry = data[end + 1:]
            for raw in data[:end].split(b"\n"):
                if offset == 0 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]  # a UTF-8 byte-order mark before the first line
                    offset += 3
                line += 1
                offset += len(raw) + 1
                raw = raw.rstrip(b"\r")
                if raw.strip():
                    batch.add_line(raw, line, max_bytes)
                if batch.records >= limit:
                    yield batch, (offset, line, stat.st_size, stat.st_mtime, False)
                    batch = Batch(str(path))
        if carry.strip():
            try:
                value = orjson.loads(carry)
            except orjson.JSONDecodeError as exc:  # offset stays before it: see TRUNCATED_TAIL
                batch.records += 1
                summary.pending_partial_lines += 1
                batch.reject(carry, line + 1, f"{TRUNCATED_TAIL}; {_diagnose(carry, exc)}; "
                                              "it is read again if the file grows")
            else:  # a complete record that just lacks its newline
                batch.records += 1
                batch.add_value(value, carry, line + 1)
                offset, line = offset + len(carry), line + 1
        yield batch, (offset, line, stat.st_size, stat.st_mtime, False)


def _gzip_batch(path: Path, settings: Settings) -> Batch:
    batch = Batch(str(path))
    data, error = b"", None
    try:
        with gzip.open(path, "rb") as fh:
            while True:
                chunk = fh.read(CHUNK_BYTES)
                if not chunk:
                    break
                data += chunk
    except (EOFError, OSError, zlib.error) as exc:
        complete = data.count(NEWLINE)
        error = f"truncated or corrupt gzip after {complete} complete lines ({exc}); re-export the file"
    lines = data.split(b"\n")
    tail = lines.pop() if error or not data.endswith(b"\n") else b""
    for no, raw in enumerate(lines, start=1):
        raw = raw.rstrip(b"\r")
        if raw.strip():
            batch.add_line(raw, no, settings.collect.max_record_bytes)
    if tail.strip() and not error:
        batch.add_line(tail, len(lines) + 1, settings.collect.max_record_bytes)
    if error:
        batch.reject(tail, len(lines) + 1, error)
    return batch


def _parquet_batch(path: Path) -> Batch:
    import pyarrow.parquet as pq

    batch = Batch(str(path))
    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises several types for damaged files
        batch.reject(b"", None, f"unreadable Parquet file ({type(exc).__name__}: {str(exc)[:200]}); re-export it")
        return batch
    for no, row in enumerate(rows, start=1):
        batch.records += 1
        for key in ("messages", "request", "response"):
            if isinstance(row.get(key), str) and row[key][:1] in ("[", "{"):
                try:
                    row[key] = orjson.loads(row[key])
                except orjson.JSONDecodeError:
                    pass  # left as a string: validation below names the field
        raw = orjson.dumps(row, default=str).decode()
        batch.add_value(row, raw, no)
    return batch

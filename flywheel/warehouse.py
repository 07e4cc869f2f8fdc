"""The DuckDB warehouse: one file, versioned migrations, short-lived connections.

DuckDB lets one process write a file at a time, so every user of the warehouse opens a connection for
one unit of work and closes it (``with connect(settings) as con:``); a second process waiting for the
lock retries for a while instead of failing. The model server never opens it: it writes to the spool.

Migrations are the ``migrations/NNNN_name.sql`` files beside this module, applied in numeric order,
each inside one transaction together with its row in ``schema_version`` — so an old file is upgraded in
place and a failed migration leaves the file at the previous version.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import duckdb

from flywheel.settings import Settings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
LOCK_WAIT_SECONDS = 60.0
LOCK_POLL_MAX_SECONDS = 0.25  # writers hold the lock for one batch or one page: try again soon


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(directory: Path | None = None) -> tuple[Migration, ...]:
    """The migration files (default: ``MIGRATIONS_DIR``), read once per process: every ``connect`` asks."""
    return _read_migrations(directory or MIGRATIONS_DIR)


@cache
def _read_migrations(directory: Path) -> tuple[Migration, ...]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        number, _, name = path.stem.partition("_")
        found.append(Migration(int(number), name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration numbers in {directory}: {versions}")
    return tuple(found)


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
    ).fetchone()[0]
    if not exists:
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]


def migrate(con: duckdb.DuckDBPyConnection, upto: int | None = None) -> list[int]:
    """Apply every pending migration (or those ``<= upto``); returns the versions applied."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name VARCHAR, "
        "applied_at TIMESTAMPTZ DEFAULT current_timestamp)"
    )
    current = schema_version(con)
    applied = []
    for m in migrations():
        if m.version <= current or (upto is not None and m.version > upto):
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(m.sql)
            con.execute("INSERT INTO schema_version (version, name) VALUES (?, ?)", [m.version, m.name])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.append(m.version)
    return applied


def _open(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:  # another process holds the write lock
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, LOCK_POLL_MAX_SECONDS)


@contextmanager
def connect(settings: Settings, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse (creating and migrating it on first use) for one unit of work."""
    path = settings.warehouse_path
    path.parent.mkdir(parents=True, exist_ok=True)
    con = _open(path, read_only=True) if read_only and path.exists() else None
    if con is not None and schema_version(con) < migrations()[-1].version:
        con.close()  # a file of an older schema: upgrade it first
        con = None
    writable = con is None
    if writable:
        con = _open(path, read_only=False)
    try:
        if writable:
            migrate(con)
        yield con
    finally:
        con.close()


def now() -> datetime:
    return datetime.now(UTC)


def content_id(*parts: object) -> str:
    """Stable id from content: the same inputs always give the same 32-hex id."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(repr(part).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()


@dataclass(frozen=True)
class Rejected:
    """One record that a stage refused, with everything needed to find and fix it."""

    stage: str
    reason: str
    raw: str
    source: str | None = None
    line: int | None = None


def quarantine(con: duckdb.DuckDBPyConnection, rejected: Iterable[Rejected], raw_chars: int = 4000) -> int:
    """Store rejected records with their reason; the same rejection twice is stored once."""
    rows = [
        (content_id(r.stage, r.source, r.line, r.raw), r.stage, r.source, r.line, r.reason, r.raw[:raw_chars], now())
        for r in rejected
    ]
    if not rows:
        return 0
    before = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    con.executemany(
        "INSERT INTO quarantine (id, stage, source, line, reason, raw, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        rows,
    )
    return con.execute("SELECT count(*) FROM quarantine").fetchone()[0] - before


def unquarantine(con: duckdb.DuckDBPyConnection, stage: str, source: str, line: int, reason_prefix: str) -> None:
    """Forget a quarantined line that has since been read after all (a file's unfinished last line)."""
    con.execute("DELETE FROM quarantine WHERE stage = ? AND source = ? AND line = ? AND starts_with(reason, ?)",
                [stage, source, line, reason_prefix])


def purge_quarantined_raw(con: duckdb.DuckDBPyConnection, older_than_days: int) -> int:
    """Blank the raw text of quarantine rows older than the retention period; returns how many."""
    return int(con.execute("UPDATE quarantine SET raw = NULL WHERE raw IS NOT NULL AND "
                           "created_at < now() - to_days(CAST(? AS INTEGER))", [older_than_days]).fetchone()[0])


def bulk(con: duckdb.DuckDBPyConnection, sql: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Run ``sql`` over many rows at once: the rows are an Arrow table named ``batch`` (columns ``columns``)
    that ``sql`` selects from, e.g. ``INSERT INTO t SELECT * FROM batch ON CONFLICT DO NOTHING``. DuckDB's
    ``executemany`` runs one statement per row: seconds for a few thousand rows."""
    if not rows:
        return
    import pyarrow as pa

    batch = pa.table({name: [row[i] for row in rows] for i, name in enumerate(columns)})  # noqa: F841
    con.execute(sql).fetchall()  # DuckDB finds ``batch`` among this frame's variables (a replacement scan)


QUARANTINE_COLUMNS = ("id", "stage", "source", "line", "reason", "created_at", "raw")


def quarantined(settings: Settings, stage: str | None = None, limit: int = 50) -> list[dict[str, object]]:
    """The newest quarantined records (all stages, or one), without their raw text."""
    where, params = ("WHERE stage = ?", [stage]) if stage else ("", [])
    with connect(settings, read_only=True) as con:
        rows = con.execute(f"SELECT id, stage, source, line, reason, created_at FROM quarantine {where} "
                           "ORDER BY created_at DESC, source, line LIMIT ?", [*params, limit]).fetchall()
    return [dict(zip(QUARANTINE_COLUMNS, row, strict=False)) for row in rows]


def quarantined_by_id(settings: Settings, prefix: str) -> list[dict[str, object]]:
    """The quarantined records whose id starts with ``prefix``, raw text included."""
    with connect(settings, read_only=True) as con:
        rows = con.execute(f"SELECT {', '.join(QUARANTINE_COLUMNS)} FROM quarantine WHERE starts_with(id, ?) "
                           "ORDER BY id", [prefix]).fetchall()
    return [dict(zip(QUARANTINE_COLUMNS, row, strict=True)) for row in rows]


STATUS_TABLES = (
    "interactions",
    "feedback",
    "quarantine",
    "bad_cases",
    "review_queue",
    "examples",
    "dataset_versions",
    "adapters",
    "training_runs",
    "deployments",
)


def status(settings: Settings) -> dict[str, object]:
    """Row counts per table plus the newest dataset and the production adapter."""
    with connect(settings, read_only=True) as con:
        counts: dict[str, object] = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in STATUS_TABLES}
        counts["schema_version"] = schema_version(con)
        latest = con.execute("SELECT version FROM dataset_versions ORDER BY created_at DESC LIMIT 1").fetchone()
        prod = con.execute("SELECT version FROM adapters WHERE status = 'production' LIMIT 1").fetchone()
    counts["latest_dataset"] = latest[0] if latest else None
    counts["production_adapter"] = prod[0] if prod else None
    return counts

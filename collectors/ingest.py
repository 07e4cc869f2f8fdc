"""Ingest interactions and feedback from files into the warehouse.

Sources are JSONL, gzip'd JSONL and Parquet files, in an inbox directory and in the spool the model
server writes. Every record is validated (``flywheel.records.parse_record``); one that cannot be read,
for whatever reason, is quarantined with its raw text, file, line and a one-line reason, and the run
goes on. Rows are bulk-loaded through Arrow and upserted by id, so ingesting the same data twice changes
nothing; a record re-sent under a stored id with different content is quarantined as a ``conflict`` (the
stored one stays), never dropped without a word.

Every file is read as a stream, in batches of ``collect.batch_rows``: memory stays bounded whatever the
file, a gzip file is decompressed no further than ``collect.max_decompressed_bytes``, one endless line
costs no more than ``collect.max_record_bytes``, and the warehouse is opened only to commit a batch, so
the review page and ``flywheel status`` get their turn between batches.

Plain JSONL files are read incrementally: the byte offset after the last complete line is stored in
``ingest_state`` with the file's identity (device, inode and a hash of the bytes read: the head and the
bytes just before the offset), in the same transaction as the rows of that batch. The next run resumes
there only while the identity holds, i.e. the file only grew; a file replaced or rewritten in place is
read again from its start. Whole-file formats are read again when their identity or mtime changed.

Directories (the inbox, the spool) are walked without following links: a symbolic link that leads out
of the directory is quarantined, never read, and files are opened with ``O_NOFOLLOW``.
"""

from __future__ import annotations

import gc
import gzip
import hashlib
import logging
import os
import stat
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa

from collectors import store
from collectors.store import FileState
from flywheel.records import Feedback, Interaction, RecordError, parse_record, to_json
from flywheel.settings import Settings
from flywheel.warehouse import Rejected, connect, quarantine, unquarantine

log = logging.getLogger(__name__)

SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")
CHUNK_BYTES = 16 * 1024 * 1024
GZIP_CHUNK_BYTES = 1024 * 1024
HEAD_BYTES, TAIL_BYTES = 64 * 1024, 4 * 1024  # what the identity hash reads of a file
# A last line with no newline that is not valid JSON is quarantined as truncated, but the file offset stays
# before it: if a writer was still at it, the next run reads the completed line, ingests it and deletes
# that quarantine row; if the file never grows, every run finds the same row (same id) and adds nothing.
TRUNCATED_TAIL = "truncated final line (no newline, incomplete JSON)"
CONFLICT = "conflict"
NUL = b"\x00"

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
# What makes two interactions with one id the same interaction: schema columns ts .. response.
CONTENT_COLUMNS = slice(1, 8)


@dataclass
class Summary:
    """What one collect run did; shown as a table, returned as JSON, kept as a Prefect artifact."""

    files: int = 0
    files_reread: int = 0  # replaced or rewritten since the last run: read again from the start
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
        return {"files": self.files, "files_reread": self.files_reread, "records_read": self.records_read,
                "interactions_new": self.interactions_new, "feedback_new": self.feedback_new,
                "duplicates_skipped": self.duplicates_skipped, "pending_partial_lines": self.pending_partial_lines,
                "quarantined": self.quarantined_total, "quarantined_by_reason": dict(sorted(self.quarantined.items()))}

    def as_rows(self) -> list[tuple[str, int]]:
        rows = [(k, v) for k, v in self.as_dict().items() if k != "quarantined_by_reason"]
        return rows + [(f"  quarantined: {k}", v) for k, v in sorted(self.quarantined.items())]


@dataclass(frozen=True)
class Source:
    path: Path
    refused: str | None = None  # why it is not read: a link that leads out of its directory


@dataclass
class Batch:
    """Valid rows and rejected lines of one unit of work, committed together with the file state."""

    source: str
    retried_line: int | None = None  # first line of this run: it may have been quarantined as a truncated tail
    interactions: dict[str, tuple] = field(default_factory=dict)  # id -> row in INTERACTION_SCHEMA order
    feedback: dict[str, tuple] = field(default_factory=dict)  # id -> row in FEEDBACK_SCHEMA order
    lines: dict[str, int | None] = field(default_factory=dict)  # interaction id -> its line, for conflicts
    rejected: list[Rejected] = field(default_factory=list)
    records: int = 0
    duplicates: int = 0

    def add_line(self, raw: bytes, line_no: int, max_bytes: int, size: int | None = None) -> None:
        """One line of a file; ``size`` is its true length when ``raw`` was cut short (an endless line)."""
        self.records += 1
        size = len(raw) if size is None else size
        if size > max_bytes:
            self.reject(raw[:max_bytes], line_no, f"record too large: {size} bytes > {max_bytes} "
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
            is_interaction = isinstance(rec, Interaction)
            row = _interaction_row(rec, self.source) if is_interaction else _feedback_row(rec, self.source)
        except RecordError as exc:
            self.reject(raw, line_no, str(exc))
            return
        bucket = self.interactions if is_interaction else self.feedback
        earlier = bucket.get(rec.id)
        if earlier is None:
            bucket[rec.id] = row
            if is_interaction:
                self.lines[rec.id] = line_no
        elif is_interaction and earlier[CONTENT_COLUMNS] != row[CONTENT_COLUMNS]:
            self.reject(raw, line_no, f"{CONFLICT}: id {rec.id} came earlier in this file (line "
                                      f"{self.lines[rec.id]}) with different content; the first is kept. "
                                      "Give a changed record a new id")
        else:
            self.duplicates += 1

    def reject(self, raw: bytes | str, line_no: int | None, reason: str) -> None:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        self.rejected.append(Rejected("collect", reason, text.replace("\x00", "\\x00"), self.source, line_no))


def _diagnose(raw: bytes, exc: Exception) -> str:
    """A precise one-line reason for a line that is not valid JSON."""
    if NUL in raw:
        return f"NUL byte at column {raw.index(NUL) + 1}; remove NUL bytes from the record"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as ude:
        return f"invalid UTF-8 at byte {ude.start + 1}; re-encode the file as UTF-8"
    return f"invalid JSON: {str(exc).splitlines()[0]}; fix the line or remove it"


def _interaction_row(rec: Interaction, source: str) -> tuple:
    messages = to_json([{"role": m.role, "content": m.content} for m in rec.messages], "messages")
    request = to_json(rec.request, "request") if rec.request is not None else None
    return (rec.id, rec.timestamp, rec.workload_id, rec.client_id, rec.model, rec.adapter, messages, rec.response,
            request, rec.latency_ms, rec.prompt_tokens, rec.completion_tokens, source)


def _feedback_row(rec: Feedback, source: str) -> tuple:
    return (rec.id, rec.interaction_id, rec.timestamp, rec.kind, rec.value, rec.text, rec.user, source)


@contextmanager
def _incoming(con: Any, rows: Iterable[tuple], schema: pa.Schema) -> Iterator[pa.Table]:
    """The rows as an Arrow table that SQL sees as ``incoming`` while the block runs."""
    columns = list(zip(*rows, strict=True)) or [()] * len(schema)
    table = pa.table({name: list(col) for name, col in zip(schema.names, columns, strict=True)}, schema=schema)
    con.register("incoming", table)
    try:
        yield table
    finally:
        con.unregister("incoming")


class _Moved(RuntimeError):
    """Another collect run advanced this file while this one read it; that run owns the rest of it."""


def commit_batch(con: Any, batch: Batch, summary: Summary, state: FileState | None, raw_chars: int,
                 expected_offset: int | None = None) -> None:
    """Upsert the batch's rows, quarantine its rejects and conflicts and advance the file state, all or nothing.

    With a ``state``, the stored offset must still be ``expected_offset`` (None: no row), else nothing is
    written and :class:`_Moved` is raised: two runs never interleave their progress on one file.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        if state is not None and store.stored_offset(con, batch.source) != expected_offset:
            raise _Moved(batch.source)
        with _incoming(con, batch.interactions.values(), INTERACTION_SCHEMA) as rows:
            conflicts = _conflicts(con, rows, batch)
            new_interactions = store.insert_new(con, "interactions", rows)
        with _incoming(con, batch.feedback.values(), FEEDBACK_SCHEMA) as rows:
            new_feedback = store.insert_new(con, "feedback", rows)
        if batch.retried_line is not None:
            unquarantine(con, "collect", batch.source, batch.retried_line, TRUNCATED_TAIL)
        quarantine(con, batch.rejected + conflicts, raw_chars)
        if state is not None:
            store.save_file_state(con, batch.source, state)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    summary.records_read += batch.records
    summary.interactions_new += new_interactions
    summary.feedback_new += new_feedback
    valid = len(batch.interactions) + len(batch.feedback)
    summary.duplicates_skipped += batch.duplicates + valid - len(conflicts) - new_interactions - new_feedback
    for rej in batch.rejected + conflicts:
        summary.quarantined[rej.reason.split(":")[0]] += 1


def _conflicts(con: Any, incoming: pa.Table, batch: Batch) -> list[Rejected]:
    """Incoming interactions whose id is stored with other content (raw text not purged): each one becomes
    a quarantine row with the record as it came, and the stored record stays as it was."""
    out = []
    for iid in store.changed_interactions(con, incoming, INTERACTION_SCHEMA.names[CONTENT_COLUMNS]):
        row = batch.interactions[iid]
        record = dict(zip(INTERACTION_SCHEMA.names, row, strict=True))
        record["messages"] = orjson.Fragment(record["messages"])
        record["request"] = orjson.Fragment(record["request"]) if record["request"] else None
        raw = orjson.dumps({k: v for k, v in record.items() if k != "source"}).decode()
        out.append(Rejected("collect", f"{CONFLICT}: id {iid} is already stored with different content; the "
                                       "stored record is kept. Send a changed interaction under a new id",
                            raw, batch.source, batch.lines.get(iid)))
    return out


def discover(paths: Iterable[Path]) -> list[Source]:
    """Ingestible files under the given files/directories, in a stable order.

    A directory is walked without following links; a link inside it is read only when it leads to a file
    inside that same directory (under its real name), else it is returned as refused, with the reason.
    A file named explicitly is read wherever it is.
    """
    found: dict[Path, Source] = {}
    for path in paths:
        if not path.is_dir():
            if path.exists():
                found[path.resolve()] = Source(path.resolve())
            continue
        root = path.resolve()
        for dirpath, dirnames, filenames in os.walk(root):  # never descends into a linked directory
            for name in filenames + dirnames:
                entry = Path(dirpath) / name
                if entry.is_symlink() and (name.endswith(SUFFIXES) or name in dirnames):
                    target = entry.resolve()
                    if not target.is_relative_to(root):
                        found[entry] = Source(entry, f"symbolic link to {target}, outside {root}; not followed: "
                                                     "copy the file into the directory instead")
                    elif target.is_file() and target.name.endswith(SUFFIXES):
                        found[target] = Source(target)
                elif name in filenames and name.endswith(SUFFIXES) and _is_regular(entry):
                    found[entry] = Source(entry)
    return [found[p] for p in sorted(found)]


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:  # gone since the directory was listed
        return False


def collect(settings: Settings, sources: list[Path] | None = None, progress: bool = False) -> Summary:
    """Ingest every source (default: the inbox and the spool); returns what was read, added and refused."""
    settings.ensure_dirs()
    files = discover(sources if sources else [settings.inbox_dir, settings.spool_dir])
    with connect(settings) as con:  # one short read; each batch then commits in a connection of its own
        states = store.file_states(con, [str(f.path) for f in files])
    summary = Summary()
    with _gc_paused():
        iterator: Iterable[Source] = files
        if progress and files:
            from rich.progress import track

            iterator = track(files, description="collecting", transient=True)
        for source in iterator:
            summary.files += 1
            try:
                _ingest_file(settings, source, states.get(str(source.path)), summary)
            except _Moved:
                log.info("%s: another collect run is reading it; left to that run", source.path)
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


def _open_regular(path: Path) -> IO[bytes]:
    """Open for reading without following a link (a link swapped in after discovery fails with ELOOP) and
    without blocking on a FIFO; anything but a regular file is refused."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(0, "not a regular file")
    return os.fdopen(fd, "rb")


def _identity_hash(fh: IO[bytes], offset: int) -> str:
    """Hash of the first HEAD_BYTES and the last TAIL_BYTES before ``offset``: what was read stays what it was."""
    fd = fh.fileno()
    h = hashlib.blake2b(os.pread(fd, min(offset, HEAD_BYTES), 0), digest_size=16)
    tail_start = max(HEAD_BYTES, offset - TAIL_BYTES)
    if offset > tail_start:
        h.update(os.pread(fd, offset - tail_start, tail_start))
    return h.hexdigest()


def _same_file(saved: FileState, st: os.stat_result, fh: IO[bytes]) -> bool:
    """Does the saved state still describe this file's first ``saved.offset`` bytes?"""
    if saved.offset > st.st_size:
        return False
    if saved.inode is None:  # a state from before identities were kept: the size check is all there is
        return True
    return ((saved.device, saved.inode) == (st.st_dev, st.st_ino)
            and saved.head_hash == _identity_hash(fh, saved.offset))


def _ingest_file(settings: Settings, source: Source, saved: FileState | None, summary: Summary) -> None:
    name, raw_chars = str(source.path), settings.collect.quarantine_raw_chars

    def commit(batch: Batch, state: FileState | None = None) -> None:
        nonlocal saved
        with connect(settings) as con:
            commit_batch(con, batch, summary, state, raw_chars, saved.offset if saved else None)
        if state is not None:
            saved = state

    if source.refused:
        commit(_file_error(name, source.refused))
        return
    try:
        fh = _open_regular(source.path)
    except OSError as exc:
        commit(_file_error(name, f"cannot read file: {exc.strerror}; check it is a readable regular file"))
        return
    with fh:
        st = os.fstat(fh.fileno())

        def state_at(offset: int, line: int, done: bool) -> FileState:
            return FileState(offset, line, st.st_size, st.st_mtime, done, st.st_dev, st.st_ino,
                             _identity_hash(fh, offset))

        if name.endswith(".jsonl"):
            start = saved if saved is not None and _same_file(saved, st, fh) else None
            if saved is not None and start is None:
                summary.files_reread += 1
            if start is not None and start.offset == st.st_size:
                return  # read to its end and unchanged: not even a connection
            for batch, offset, line in _jsonl_batches(fh, start.offset if start else 0, start.line if start else 0,
                                                      settings, summary, name):
                commit(batch, state_at(offset, line, False))
            return
        if saved is not None and saved.done and (saved.size, saved.mtime) == (st.st_size, st.st_mtime) \
                and _same_file(saved, st, fh):
            return  # whole-file formats: unchanged since it was read
        if saved is not None:
            summary.files_reread += 1
        if name.endswith(".jsonl.gz"):
            batches = _gzip_batches(fh, name, settings)
        elif name.endswith(".parquet"):
            batches = _parquet_batches(fh, name, settings.collect.batch_rows)
        else:
            batches = iter([_file_error(name, "unsupported file type; use .jsonl, .jsonl.gz or .parquet")])
        _commit_last_with(batches, commit, lambda: state_at(st.st_size, 0, True))


def _commit_last_with(batches: Iterable[Batch], commit: Callable[..., None], final: Callable[[], FileState]) -> None:
    """Commit each batch as it comes; the last one (every reader yields at least one) also marks the file read."""
    pending: Batch | None = None
    for batch in batches:
        if pending is not None:
            commit(pending)
        pending = batch
    assert pending is not None
    commit(pending, final())


def _file_error(source: str, reason: str) -> Batch:
    batch = Batch(source)
    batch.reject(b"", None, reason)
    return batch


def _lines(chunks: Iterable[bytes], max_bytes: int) -> Iterator[tuple[bytes, int, bool]]:
    """Split a byte stream into ``(line, bytes it takes with its newline, whether a newline ended it)``.

    A line longer than ``max_bytes`` keeps only its first ``max_bytes + 1`` bytes (enough to refuse it with
    its real size), so one endless line never fills memory.
    """
    head, size = b"", 0  # the unfinished line so far: the bytes kept of it, and its real size
    for chunk in chunks:
        parts = chunk.split(b"\n")
        for part in parts[:-1]:
            if size:
                yield (head + part)[: max_bytes + 1], size + len(part) + 1, True
                head, size = b"", 0
            else:
                yield part, len(part) + 1, True
        rest = parts[-1]
        if rest:
            if len(head) <= max_bytes:
                head = (head + rest)[: max_bytes + 1]
            size += len(rest)
    if size:
        yield head, size, False


def _jsonl_batches(fh: IO[bytes], offset: int, line: int, settings: Settings, summary: Summary,
                   source: str) -> Iterator[tuple[Batch, int, int]]:
    """Batches of complete lines from ``offset`` on, each with the offset and line number after it."""
    max_bytes, limit = settings.collect.max_record_bytes, settings.collect.batch_rows
    fh.seek(offset)
    batch = Batch(source, retried_line=line + 1)
    for raw, size, complete in _lines(iter(lambda: fh.read(CHUNK_BYTES), b""), max_bytes):
        if offset == 0 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]  # a UTF-8 byte-order mark before the first line
        if not complete:
            if _take_tail(batch, raw, size, line + 1, summary, max_bytes):
                offset, line = offset + size, line + 1
            break
        line += 1
        offset += size
        raw = raw.rstrip(b"\r")
        if raw.strip():
            batch.add_line(raw, line, max_bytes, size - 1)
        if batch.records >= limit:
            yield batch, offset, line
            batch = Batch(source)
    yield batch, offset, line


def _take_tail(batch: Batch, raw: bytes, size: int, line_no: int, summary: Summary, max_bytes: int) -> bool:
    """The last line has no newline. A complete record is taken as it is (True); anything else may still be
    being written, so it is quarantined as a truncated tail and the offset stays before it (TRUNCATED_TAIL)."""
    if not raw.strip():
        return False
    batch.records += 1
    if size > max_bytes:
        reason = f"record too large so far: {size} bytes > {max_bytes} (collect.max_record_bytes)"
    else:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            reason = _diagnose(raw, exc)
        else:
            batch.add_value(value, raw, line_no)
            return True
    summary.pending_partial_lines += 1
    batch.reject(raw[:max_bytes], line_no, f"{TRUNCATED_TAIL}; {reason}; it is read again if the file grows")
    return False


def _gzip_batches(fh: IO[bytes], source: str, settings: Settings) -> Iterator[Batch]:
    """Decompress as a stream, never past ``collect.max_decompressed_bytes``; records before a cut or a
    corrupt spot are kept, and the rest of the file is quarantined with the reason."""
    cap, max_bytes, limit = (settings.collect.max_decompressed_bytes, settings.collect.max_record_bytes,
                             settings.collect.batch_rows)
    produced, error = 0, None
    gz = gzip.GzipFile(fileobj=fh, mode="rb")

    def chunks() -> Iterator[bytes]:
        nonlocal produced, error
        try:
            while chunk := gz.read(GZIP_CHUNK_BYTES):
                produced += len(chunk)
                if produced > cap:
                    error = (f"decompresses to more than {cap} bytes (collect.max_decompressed_bytes); the rest "
                             "was not read: split the file or raise the limit")
                    return
                yield chunk
        except (EOFError, OSError, zlib.error) as exc:
            error = f"truncated or corrupt gzip ({exc}); re-export the file"

    batch, line, cut = Batch(source), 0, b""
    for raw, size, complete in _lines(chunks(), max_bytes):
        if not complete and error:
            cut = raw  # the line the cut or the damage went through
            break
        line += 1
        raw = raw.rstrip(b"\r")
        if raw.strip():
            batch.add_line(raw, line, max_bytes, size - 1 if complete else size)
        if batch.records >= limit:
            yield batch
            batch = Batch(source)
    if error:
        batch.reject(cut[:max_bytes], line + 1, f"{error}; {line} complete lines before it were read")
    yield batch


def _parquet_batches(fh: IO[bytes], source: str, rows_per_batch: int) -> Iterator[Batch]:
    import pyarrow.parquet as pq

    batch, no = Batch(source), 0
    try:
        for record_batch in pq.ParquetFile(fh).iter_batches(batch_size=rows_per_batch):
            for row in record_batch.to_pylist():
                no += 1
                batch.records += 1
                for key in ("messages", "request", "response"):
                    if isinstance(row.get(key), str) and row[key][:1] in ("[", "{"):
                        try:
                            row[key] = orjson.loads(row[key])
                        except orjson.JSONDecodeError:
                            pass  # left as a string: validation below names the field
                batch.add_value(row, orjson.dumps(row, default=str).decode(), no)
            yield batch
            batch = Batch(source)
    except Exception as exc:  # pyarrow raises several types for damaged files
        batch.reject(b"", None, f"unreadable Parquet file after {no} rows ({type(exc).__name__}: {str(exc)[:200]}); "
                                "re-export it")
    yield batch

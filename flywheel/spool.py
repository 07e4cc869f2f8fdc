"""Append-only JSONL spool: how processes other than the collector hand records to the warehouse.

The model server appends each interaction and feedback record as one line, flushed at once, to a
segment ``<writer>-<pid>-<seq>.jsonl`` and starts a new segment past a size limit. It never touches the
warehouse, so it never waits on DuckDB's single-writer lock. The collector reads segments like any
inbox file: complete lines only, resuming at the byte offset it stored.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import orjson


class SpoolWriter:
    def __init__(self, directory: Path, writer: str = "server", segment_bytes: int = 4_000_000) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.writer = writer
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._seq = 0
        self._fh = None
        self._size = 0

    def _open_next(self) -> None:
        if self._fh is not None:
            self._fh.close()
        while True:
            self._seq += 1
            path = self.directory / f"{self.writer}-{os.getpid()}-{self._seq:06d}.jsonl"
            if not path.exists():
                break
        self._fh = open(path, "ab", buffering=0)
        self._size = 0

    @property
    def current_path(self) -> Path | None:
        return Path(self._fh.name) if self._fh is not None else None

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as one complete line (a single write call, unbuffered)."""
        line = orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS) + b"\n"
        with self._lock:
            if self._fh is None or self._size + len(line) > self.segment_bytes:
                self._open_next()
            self._fh.write(line)
            self._size += len(line)

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

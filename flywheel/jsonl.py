"""The one reader of JSON Lines files (and JSON array files) for every command that takes a file of records.

It never raises on a bad line: each line comes back with its number, and either its value or a one-line
reason, so the caller can quarantine it and go on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson


@dataclass(frozen=True)
class Line:
    number: int
    value: Any = None
    error: str | None = None  # why the line is not a JSON value; None when it is
    raw: bytes = b""

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", "replace")


def read_jsonl(path: Path) -> Iterator[Line]:
    """Lines of a JSONL file (blank lines skipped), or the items of a file holding one JSON array."""
    with open(path, "rb") as fh:
        head = fh.read(64).lstrip()
        fh.seek(0)
        if head.startswith(b"["):
            data = fh.read()
            try:
                items = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                yield Line(1, error=f"{path.name}: not valid JSON ({exc}); fix the file or write one record per line",
                           raw=data[:4000])
                return
            for number, item in enumerate(items, 1):
                yield Line(number, item, raw=orjson.dumps(item))
            return
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                yield Line(number, orjson.loads(raw), raw=raw)
            except orjson.JSONDecodeError as exc:
                yield Line(number, error=f"line {number}: not valid JSON ({exc}); fix the line or remove it", raw=raw)


def count_records(path: Path) -> int:
    """Non-blank lines: the total a progress bar needs, without parsing."""
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())

"""The one shape every curation step has (after datatrove's PipelineStep).

A step is called with an iterator of records (plain dicts) and yields the records it keeps, possibly
changed. It counts what it did in ``self.stats`` and hands every record it drops to its
``ExclusionWriter`` together with the reason — nothing leaves a pipeline unaccounted for.

    steps = [Scrub(...), Dedup(...), HapFilter(...)]
    records = iter(rows)
    for step in steps:
        records = step(records)
    kept = list(records)            # each step's .stats and .excluded now tell the funnel
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

Record = dict[str, Any]


@dataclass
class Exclusion:
    record: Record
    reason: str
    step: str


@dataclass
class ExclusionWriter:
    """Collects dropped records with their reason; ``flush_to`` writes them (JSONL or the warehouse)."""

    items: list[Exclusion] = field(default_factory=list)

    def write(self, record: Record, reason: str, step: str) -> None:
        self.items.append(Exclusion(record, reason, step))

    def to_jsonl(self, path: str) -> int:
        with open(path, "ab") as fh:
            for ex in self.items:
                fh.write(orjson.dumps({"step": ex.step, "reason": ex.reason, "record": ex.record}) + b"\n")
        return len(self.items)

    def to_rejected(self, source: str | None = None) -> list[Any]:
        """As warehouse quarantine rows (``flywheel.warehouse.quarantine``)."""
        from flywheel.warehouse import Rejected

        return [
            Rejected(stage=ex.step, reason=ex.reason, raw=orjson.dumps(ex.record).decode(), source=source,
                     line=None)
            for ex in self.items
        ]


class Step(ABC):
    """Base class: subclasses implement ``run`` and use ``self.stats`` / ``self.exclude``."""

    name = "step"

    def __init__(self, exclusions: ExclusionWriter | None = None) -> None:
        self.stats: Counter[str] = Counter()
        self.exclusions = exclusions if exclusions is not None else ExclusionWriter()

    def exclude(self, record: Record, reason: str) -> None:
        self.stats["dropped"] += 1
        self.exclusions.write(record, reason, self.name)

    @abstractmethod
    def run(self, records: Iterable[Record]) -> Iterator[Record]:
        """Yield the kept records; call ``self.exclude`` for each dropped one."""

    def __call__(self, records: Iterable[Record]) -> Iterator[Record]:
        for record in self.run(records):
            self.stats["kept"] += 1
            yield record

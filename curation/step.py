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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
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


# A function that applies ``fn`` to every shard, in any order or place, and returns results in shard order:
# plain ``map`` here, a Dask cluster through a Prefect task runner in ``flows/curate.py``.
MapShards = Callable[[Callable[[list[Record]], "ShardResult"], list[list[Record]]], list["ShardResult"]]


@dataclass
class ShardResult:
    kept: list[Record]
    stats: dict[str, int]
    excluded: list[Exclusion]


def run_shard(make_step: Callable[[], Step], shard: list[Record]) -> ShardResult:
    """Run a fresh step over one shard (on whichever worker calls this)."""
    step = make_step()
    kept = list(step(shard))
    return ShardResult(kept, dict(step.stats), step.exclusions.items)


class Sharded(Step):
    """Runs a per-record step over fixed-size shards through ``map_shards`` and merges the results in order.

    Only for steps whose output for a record does not depend on other records (scrub, HAP): the
    output is then the same as one process running the step over all records, whatever the workers.
    """

    def __init__(self, name: str, make_step: Callable[[], Step], map_shards: MapShards, shard_size: int,
                 exclusions: ExclusionWriter | None = None) -> None:
        super().__init__(exclusions)
        self.name, self.make_step, self.map_shards, self.shard_size = name, make_step, map_shards, shard_size

    def run(self, records: Iterable[Record]) -> Iterator[Record]:
        rows = list(records)
        shards = [rows[i:i + self.shard_size] for i in range(0, len(rows), self.shard_size)]
        for result in self.map_shards(partial(run_shard, self.make_step), shards):
            self.stats.update({k: v for k, v in result.stats.items() if k != "kept"})
            self.exclusions.items.extend(result.excluded)
            yield from result.kept

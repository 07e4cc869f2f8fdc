"""Runs a list of curation steps over records: in this process, on a local process pool, or on Dask.

Steps whose result for a record depends on that record alone (``Step.per_record``: scrub, HAP) run over
fixed-size shards; consecutive ones form one *stage*, so a shard goes through all of them in one trip.
Other steps (dedup: the first of two duplicates wins) run here, in order, between stages. Whatever runs
the shards, the output is the same as one process running every step over all records.

A shard's result is checkpointed under ``checkpoint_dir`` as soon as it is done; a re-run of the same
input (say, after a crash or a lost worker) reads finished shards back instead of computing them again.

Workers build their steps once per process (loading spaCy or an encoder takes seconds) and reuse them for
every shard they receive.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import orjson

from curation.step import Drop, Exclusion, ExclusionWriter, Record, RunContext, Step, StepStats, step_class
from flywheel.jsonl import count_records, read_jsonl

Progress = Callable[[str, int, int], None]  # (stage label, records done, records in the stage)


@dataclass
class ShardResult:
    kept: list[Record]
    stats: list[StepStats]
    excluded: list[Exclusion]

    def to_bytes(self) -> bytes:
        return orjson.dumps({"kept": self.kept, "stats": [s.as_dict() for s in self.stats],
                             "excluded": [[e.step, e.drop.code, e.drop.detail, e.record] for e in self.excluded]},
                            default=str)

    @classmethod
    def from_bytes(cls, data: bytes) -> ShardResult:
        raw = orjson.loads(data)
        return cls(raw["kept"], [StepStats.from_dict(s) for s in raw["stats"]],
                   [Exclusion(record, Drop(code, detail), step) for step, code, detail, record in raw["excluded"]])


# (function of one shard, shards) -> results in shard order, each as soon as the caller wants it.
MapShards = Callable[[Callable[[list[Record]], ShardResult], list[list[Record]]], Iterable[ShardResult]]


@dataclass(frozen=True)
class StageSpec:
    """What a worker needs to build a stage's steps itself: picklable, and a cache key."""

    step_names: tuple[str, ...]
    context: RunContext = field(compare=False)

    @property
    def key(self) -> str:
        settings = self.context.settings.model_dump_json(exclude={"home"})
        return hashlib.blake2b(f"{self.step_names}\x1f{settings}".encode(), digest_size=12).hexdigest()


_WORKER_STEPS: dict[str, list[Step]] = {}  # per worker process: steps built once, reused for every shard


def build_steps(spec: StageSpec) -> list[Step]:
    return [step_class(name).from_settings(spec.context) for name in spec.step_names]


def run_shard(spec: StageSpec, shard: list[Record]) -> ShardResult:
    """Run a stage's steps over one shard, on whichever process calls this."""
    steps = _WORKER_STEPS.get(spec.key)
    if steps is None:
        steps = _WORKER_STEPS[spec.key] = build_steps(spec)
    exclusions = ExclusionWriter()
    records: Iterable[Record] = shard
    for step in steps:
        step.stats, step.exclusions = StepStats(step.name), exclusions
        records = step(records)
    kept = list(records)
    return ShardResult(kept, [step.stats for step in steps], exclusions.items)


def _pool_initializer(threads: int) -> None:
    """Each pool worker uses ``threads`` torch/BLAS threads: the pool, not the threads, spreads the work."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)


def local_map(processes: int) -> MapShards:
    """Shards in this process (``processes`` <= 1) or on a pool of ``processes`` worker processes."""
    if processes <= 1:
        return lambda fn, shards: (fn(shard) for shard in shards)

    def pool_map(fn: Callable[[list[Record]], ShardResult], shards: list[list[Record]]) -> Iterator[ShardResult]:
        # spawn, not fork: the parent may hold torch's thread pools, which do not survive a fork.
        with ProcessPoolExecutor(processes, mp_context=get_context("spawn"), initializer=_pool_initializer,
                                 initargs=(1,)) as pool:
            yield from pool.map(fn, shards)

    return pool_map


class Pipeline:
    """Steps built from names, run over records by stages; every drop lands in one ExclusionWriter."""

    def __init__(self, step_names: Sequence[str], context: RunContext, map_shards: MapShards | None = None,
                 shard_size: int = 256, checkpoint_dir: Path | None = None, progress: Progress | None = None) -> None:
        self.context = context
        self.map_shards = map_shards or local_map(1)
        self.shard_size = shard_size
        self.checkpoint_dir = checkpoint_dir
        self.progress = progress
        self.exclusions = ExclusionWriter()
        self.stages: list[Step | StageSpec] = []
        pending: list[str] = []
        for name in step_names:
            cls = step_class(name)
            if cls.per_record:
                pending.append(name)
                continue
            if pending:
                self.stages.append(StageSpec(tuple(pending), context))
                pending = []
            step = cls.from_settings(context)
            step.exclusions = self.exclusions
            self.stages.append(step)
        if pending:
            self.stages.append(StageSpec(tuple(pending), context))
        self.classes = [step_class(name) for name in step_names]
        self.stats = [StepStats(cls.name) for cls in self.classes]

    def report(self) -> list[dict[str, Any]]:
        """Each step's stats as plain data, with its headline figure (``Step.headline``)."""
        return [{**stats.as_dict(), "headline": list(cls.headline(stats))}
                for cls, stats in zip(self.classes, self.stats, strict=True)]

    def steps(self) -> list[Step]:
        """The steps that run in this process (not the sharded ones)."""
        return [stage for stage in self.stages if isinstance(stage, Step)]

    def run(self, records: list[Record]) -> list[Record]:
        position = 0
        for number, stage in enumerate(self.stages):
            if isinstance(stage, Step):
                if self.progress:
                    self.progress(stage.name, 0, len(records))
                records = list(stage(records))
                self.stats[position] = stage.stats
                position += 1
                if self.progress:
                    self.progress(stage.name, stage.stats.n_in, stage.stats.n_in)
                continue
            results = self._run_stage(number, stage, records)
            records = []
            for result in results:
                records += result.kept
                self.exclusions.items.extend(result.excluded)
                for offset, stats in enumerate(result.stats):
                    self.stats[position + offset].merge(stats)
            position += len(stage.step_names)
        return records

    def _run_stage(self, number: int, spec: StageSpec, records: list[Record]) -> list[ShardResult]:
        shards = [records[i:i + self.shard_size] for i in range(0, len(records), self.shard_size)]
        label = " + ".join(spec.step_names)
        folder = self._stage_folder(number, spec, records)
        done: dict[int, ShardResult] = {}
        if folder is not None:
            for k in range(len(shards)):
                path = folder / f"shard-{k:05d}.json"
                if path.is_file():
                    done[k] = ShardResult.from_bytes(path.read_bytes())
        todo = [k for k in range(len(shards)) if k not in done]
        finished = sum(len(shards[k]) for k in done)
        if self.progress:
            self.progress(label, finished, len(records))
        for k, result in zip(todo, self.map_shards(partial(run_shard, spec), [shards[k] for k in todo]), strict=True):
            if folder is not None:
                tmp = folder / f"shard-{k:05d}.json.tmp"
                tmp.write_bytes(result.to_bytes())
                tmp.replace(folder / f"shard-{k:05d}.json")
            done[k] = result
            finished += len(shards[k])
            if self.progress:
                self.progress(label, finished, len(records))
        return [done[k] for k in range(len(shards))]

    def _stage_folder(self, number: int, spec: StageSpec, records: list[Record]) -> Path | None:
        """Where this stage's shards are checkpointed: keyed by its steps, settings and exact input."""
        if self.checkpoint_dir is None:
            return None
        digest = hashlib.blake2b(digest_size=12)
        digest.update(f"{spec.key}\x1f{self.shard_size}".encode())
        for record in records:
            digest.update(orjson.dumps(record, option=orjson.OPT_SORT_KEYS, default=str))
        folder = self.checkpoint_dir / f"stage-{number}-{digest.hexdigest()}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def run_on_jsonl(step: Step, src: Path, out: Path, progress: Progress | None = None) -> Step:
    """One step over a JSONL file: the kept records, in order, to ``out`` (written whole, then renamed);
    a line that is not a JSON object is excluded by the step with its line number and reason."""

    total = count_records(src) if progress else 0

    def records() -> Iterator[Record]:
        for line in read_jsonl(src):
            if progress and line.number % 256 == 0:
                progress(step.name, line.number, total)
            if isinstance(line.value, dict):
                yield line.value
                continue
            drop = Drop("invalid", line.error or f"line {line.number}: a JSON {type(line.value).__name__}, "
                                                 "expected an object")
            step.stats.n_in += 1
            step.stats.dropped[drop.code] += 1
            step.exclusions.write({"line": line.number, "raw": line.text[:4000]}, drop, step.name)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    with tmp.open("wb") as fh:
        for record in step(records()):
            fh.write(orjson.dumps(record) + b"\n")
    tmp.replace(out)
    if progress:
        progress(step.name, total, total)
    return step

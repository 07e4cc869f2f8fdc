"""The one shape every curation step has (after datatrove's ``BaseFilter`` and its executor).

A step implements one hook, :meth:`Step.process`: given a batch of records (plain dicts), return one
result per record, either the record to keep (possibly changed) or a :class:`Drop` with a short reason
code and a detail. The base class does everything else the same way for every step: refusing a record with
an unpaired surrogate in a string (``unpaired_surrogate``: no model reads one) before ``process``, batching, timing,
kept / dropped counts per reason code and per language, a few examples per reason, and the
:class:`ExclusionWriter` that keeps every dropped record with its reason. Nothing leaves a pipeline
unaccounted for.

    class Shout(Step):
        name = "shout"

        def process(self, batch):
            return [Drop("empty") if not r.get("text") else {**r, "text": r["text"].upper()} for r in batch]

    records = iter(rows)
    for step in (Shout(), Dedup(...)):
        records = step(records)
    kept = list(records)        # each step's .stats and .exclusions now tell the funnel

A pipeline builds its steps from settings by name (``curate.steps``): a registered name or a
``module:Class`` path, so adding a step is one class and one line of settings.
"""

from __future__ import annotations

import importlib
import json
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from time import perf_counter
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from curation.text import LANGUAGES, language_of
from flywheel.records import message_text
from flywheel.settings import Settings, SettingsError
from flywheel.warehouse import Rejected

if TYPE_CHECKING:
    from pathlib import Path

Record = dict[str, Any]
EXAMPLES_PER_KEY = 3  # examples kept per reason code / per counter, for the reports
EXAMPLE_CHARS = 160


@dataclass(frozen=True)
class Drop:
    """Why a step drops a record: ``code`` is short and countable ("near_duplicate"), ``detail`` says which
    record, score or field, for the quarantine row."""

    code: str
    detail: str = ""
    keep: Record | None = field(default=None, compare=False)  # what quarantine keeps instead of the record

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}" if self.detail else self.code


@dataclass
class Exclusion:
    record: Record
    drop: Drop
    step: str

    @property
    def reason(self) -> str:
        return str(self.drop)


@dataclass
class ExclusionWriter:
    """Keeps every dropped record with its step and reason; ``to_rejected`` makes warehouse quarantine rows."""

    items: list[Exclusion] = field(default_factory=list)

    def write(self, record: Record, drop: Drop, step: str) -> None:
        self.items.append(Exclusion(record, drop, step))

    def to_rejected(self, source: str | None = None) -> list[Rejected]:
        return [Rejected(stage=ex.step, reason=ex.reason, raw=_as_json(ex.record), source=source, line=None)
                for ex in self.items]


def _as_json(record: Record) -> str:
    """The record as JSON; one holding an unpaired surrogate (``unpaired_surrogate``), which orjson refuses, with
    the surrogate escaped (``\\ud800``) so that it is kept as it came."""
    try:
        return orjson.dumps(record, default=str).decode()
    except orjson.JSONEncodeError:
        return json.dumps(record, default=str)


@dataclass
class StepStats:
    """What one step did: records in / kept, drops per reason code, the step's own counters (e.g.
    ``replaced:PERSON``), the same per language, seconds spent in ``process``, and a few examples."""

    name: str
    n_in: int = 0
    kept: int = 0
    seconds: float = 0.0
    dropped: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)
    by_language: dict[str, Counter[str]] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def n_dropped(self) -> int:
        return sum(self.dropped.values())

    def for_language(self, lang: str) -> Counter[str]:
        return self.by_language.setdefault(lang, Counter())

    def add_example(self, key: str, text: str) -> None:
        kept = self.examples.setdefault(key, [])
        if len(kept) < EXAMPLES_PER_KEY:
            kept.append(text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS - 1] + "…")

    def merge(self, other: StepStats) -> None:
        """Add another run of the same step (a shard done elsewhere)."""
        self.n_in += other.n_in
        self.kept += other.kept
        self.seconds += other.seconds
        self.dropped.update(other.dropped)
        self.counts.update(other.counts)
        for lang, counter in other.by_language.items():
            self.for_language(lang).update(counter)
        for key, texts in other.examples.items():
            for text in texts:
                self.add_example(key, text)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "in": self.n_in, "kept": self.kept, "dropped": dict(sorted(self.dropped.items())),
                "counts": dict(sorted(self.counts.items())), "seconds": round(self.seconds, 3),
                "by_language": {k: dict(sorted(v.items())) for k, v in sorted(self.by_language.items())},
                "examples": self.examples}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepStats:
        return cls(data["name"], data["in"], data["kept"], data["seconds"], Counter(data["dropped"]),
                   Counter(data["counts"]), {k: Counter(v) for k, v in data["by_language"].items()},
                   {k: list(v) for k, v in data["examples"].items()})


def report_rows(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """One step's stats (``StepStats.as_dict()``) as table rows: what, all, then one column per language seen.

    The same rows serve the CLI table, the Prefect artifact and the data card."""
    langs = [lang for lang in LANGUAGES if lang in stats["by_language"]]
    keys = ["in", "kept", *(f"dropped:{code}" for code in stats["dropped"]), *stats["counts"]]
    totals = {"in": stats["in"], "kept": stats["kept"],
              **{f"dropped:{c}": n for c, n in stats["dropped"].items()}, **stats["counts"]}
    return [{"what": key, "all": totals[key], **{lang: stats["by_language"][lang].get(key, 0) for lang in langs}}
            for key in keys]


def record_language(record: Record) -> str:
    """The record's language (``curation.text.language_of`` over all its texts)."""
    return language_of(record_text(record))


def record_text(record: Record) -> str:
    """Every text of a record, joined: message contents (strings or text parts) and plain string fields."""
    parts: list[str] = []
    for key, value in record.items():
        if key in ("id", "lang", "kind", "source_interactions", "dataset_version", "origin"):
            continue
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            parts.extend(message_text(m) for m in value)
    return "\n".join(p for p in parts if p)


@dataclass
class RunContext:
    """What a pipeline hands its steps beyond the settings: the earlier dataset versions (oldest first)."""

    settings: Settings
    earlier_versions: list[Path] = field(default_factory=list)


class Step(ABC):
    """Subclasses set ``name`` and implement ``process``; see the module docstring."""

    name: ClassVar[str] = "step"
    per_record: ClassVar[bool] = True  # a record's result depends on it alone: the step may run on shards
    batch_size: int = 256

    def __init__(self, exclusions: ExclusionWriter | None = None) -> None:
        self.stats = StepStats(self.name)
        self.exclusions = exclusions if exclusions is not None else ExclusionWriter()
        self._languages: dict[int, str] = {}  # id(record) -> language, for the batch in hand

    @classmethod
    def from_settings(cls, context: RunContext) -> Step:
        """How a pipeline builds the step from its settings; a step with no settings needs nothing more."""
        return cls()

    @classmethod
    def headline(cls, stats: StepStats) -> tuple[str, int]:
        """The one figure a turn's summary shows for this step (the demo table, the flywheel flow)."""
        return f"{stats.name}: records dropped", stats.n_dropped

    @abstractmethod
    def process(self, batch: list[Record]) -> list[Record | Drop]:
        """One result per record of ``batch``, in order: the record to keep (possibly changed) or a Drop."""

    def language(self, record: Record) -> str:
        """The record's language; computed once per record and step (the base needs it for its counts)."""
        key = id(record)
        if key not in self._languages:
            self._languages[key] = record_language(record) if isinstance(record, dict) else "other"
        return self._languages[key]

    def count(self, key: str, lang: str | None = None, n: int = 1) -> None:
        """Count something the step did (``replaced:PERSON``), overall and for the record's language."""
        self.stats.counts[key] += n
        if lang is not None:
            self.stats.for_language(lang)[key] += n

    def __call__(self, records: Iterable[Record]) -> Iterator[Record]:
        iterator = iter(records)
        while batch := list(islice(iterator, self.batch_size)):
            started = perf_counter()
            refused = [unpaired_surrogate(record) for record in batch]
            readable = [record for record, drop in zip(batch, refused, strict=True) if drop is None]
            processed = self.process(readable) if readable else []
            self.stats.seconds += perf_counter() - started
            if len(processed) != len(readable):
                raise RuntimeError(f"step {self.name}: process returned {len(processed)} results for "
                                   f"{len(readable)} records")
            done = iter(processed)
            results = [next(done) if drop is None else drop for drop in refused]
            languages = [self.language(record) for record in batch]
            self._languages.clear()
            for record, result, lang in zip(batch, results, languages, strict=True):
                if not isinstance(record, dict):
                    record = {"record": record}
                per_lang = self.stats.for_language(lang)
                self.stats.n_in += 1
                per_lang["in"] += 1
                if isinstance(result, Drop):
                    self.stats.dropped[result.code] += 1
                    per_lang[f"dropped:{result.code}"] += 1
                    self.stats.add_example(result.code, result.detail or str(record.get("id", "")))
                    self.exclusions.write(record if result.keep is None else result.keep, result, self.name)
                    continue
                self.stats.kept += 1
                per_lang["kept"] += 1
                yield result


_SURROGATE = re.compile("[\ud800-\udfff]")


def unpaired_surrogate(record: Any, path: str = "") -> Drop | None:
    """The drop for a record with a string holding an unpaired UTF-16 surrogate ("\\ud800" in JSON: what a broken
    UTF-16 decode leaves), else None. No UTF-8 file, tokenizer or spaCy model takes one, so every step refuses such
    a record the same way, before its own work, naming the field."""
    if isinstance(record, str):
        found = _SURROGATE.search(record)
        if found is None:
            return None
        return Drop("bad_text", f"field {path or 'text'!r} holds an unpaired surrogate {found.group()!r} at character "
                                f"{found.start()}; decode the source again as UTF-8 (or UTF-16 with its pairs whole)")
    items = record.items() if isinstance(record, dict) else enumerate(record) if isinstance(record, list) else ()
    for key, value in items:
        if drop := unpaired_surrogate(value, f"{path}.{key}" if path else str(key)):
            return drop
    return None


def not_a_record(record: Any) -> Drop | None:
    """The drop for something that is not a JSON object, else None: every step refuses those the same way."""
    if isinstance(record, dict):
        return None
    return Drop("not_an_object", f"record is {type(record).__name__}; expected a JSON object")


REGISTERED_STEPS = {
    "dedup": "curation.dedup:Dedup",
    "scrub": "curation.pii:Scrub",
    "hap": "curation.hap:HapFilter",
}


def step_class(name: str) -> type[Step]:
    """The class behind a ``curate.steps`` entry: a registered name or ``package.module:Class``."""
    path = REGISTERED_STEPS.get(name, name)
    module_name, _, class_name = path.partition(":")
    if not class_name:
        raise SettingsError(f"curate.steps: {name!r} is neither a registered step ({', '.join(REGISTERED_STEPS)}) "
                            "nor a 'package.module:Class' path")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise SettingsError(f"curate.steps: cannot load {path!r} ({exc}); check the module path and class name") from exc
    if not (isinstance(cls, type) and issubclass(cls, Step)):
        raise SettingsError(f"curate.steps: {path!r} is not a curation.step.Step subclass")
    return cls

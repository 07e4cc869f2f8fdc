"""``curate(settings)``: mine -> review queue -> build examples -> Scrub -> Dedup -> HapFilter -> write vN.

The one function behind ``flywheel curate``, the Prefect ``curate`` flow and the tests. The warehouse is
held only to read the inputs and to record the result, never while the slow steps run.

A *window* is the set of inputs (interactions in [since, until) with their feedback, the review
decisions, the imported seed data) plus the configuration; its hash is ``dataset_versions.window_key``,
so curating the same window twice returns the existing version. A new version holds only examples no
earlier version holds (by id, and by near-duplicate text through the dedup index of every earlier
version), plus a replay sample (``curate.replay_fraction`` of the new training rows, per kind) drawn from
earlier versions' training rows and imported replay data.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import orjson

from curation.datasets import (
    KINDS,
    SPLITS,
    VersionContents,
    assign_splits,
    public_row,
    replay_sample,
    write_version,
)
from curation.dedup import Dedup, DedupIndex
from curation.examples import build_examples, conversation_text, imported_examples, load_decisions
from curation.mining import MineResult, load_interactions, mine
from curation.step import ExclusionWriter, MapShards, Record, Sharded, Step
from flywheel.records import EXAMPLE_BODY, content_key
from flywheel.settings import Settings
from flywheel.warehouse import connect, content_id, quarantine

VERSION = re.compile(r"^v(\d+)$")


@dataclass
class CurateResult:
    version: str | None
    uri: str | None
    created: bool
    message: str
    window_key: str
    n_new: int = 0
    n_sft: int = 0
    n_dpo: int = 0
    n_replay: int = 0
    quarantined: int = 0
    funnel: list[tuple[str, int, int]] = field(default_factory=list)
    pii: dict[str, int] = field(default_factory=dict)
    dedup: dict[str, int] = field(default_factory=dict)
    hap: dict[str, int] = field(default_factory=dict)
    mined: MineResult | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def safety_steps(settings: Settings, exclusions: ExclusionWriter, map_shards: MapShards | None = None,
                 shard_size: int = 256) -> tuple[Step, Step]:
    """The data-safety steps (PII scrub, HAP filter) over every text field of an example.

    With ``map_shards`` each runs over shards of ``shard_size`` records wherever that function sends
    them (a Dask cluster); both are per-record, so the output is the same as in one process.
    """
    scrub, hap = partial(_make_scrub, settings), partial(_make_hap, settings)
    if map_shards is None:
        return scrub(exclusions), hap(exclusions)
    return (Sharded("scrub", scrub, map_shards, shard_size, exclusions),
            Sharded("hap", hap, map_shards, shard_size, exclusions))


def _make_scrub(settings: Settings, exclusions: ExclusionWriter | None = None) -> Step:
    from curation.pii import Scrub

    return Scrub(settings.scrub, fields=list(EXAMPLE_BODY), exclusions=exclusions)


def _make_hap(settings: Settings, exclusions: ExclusionWriter | None = None) -> Step:
    from curation.hap import HapFilter

    return HapFilter(settings.hap, exclusions=exclusions, cache_dir=settings.models_dir)


def config_snapshot(settings: Settings) -> dict[str, Any]:
    """The settings that shape a dataset (secrets left out): part of the window key and the data card."""
    scrub = settings.scrub.model_dump(mode="json", exclude={"hash_key", "processes", "raw_retention_days"})
    return {"curate": settings.curate.model_dump(mode="json", exclude={"judge_api_key"}),
            "dedup": settings.dedup.model_dump(mode="json"), "scrub": scrub,
            "hap": settings.hap.model_dump(mode="json")}


def version_dirs(versions: list[str], settings: Settings) -> list[Any]:
    """Directories of existing versions, oldest first."""
    ordered = sorted((int(m.group(1)), v) for v in versions if (m := VERSION.match(v)))
    return [settings.datasets_dir / v for _, v in ordered]


def _funnel(steps: list[tuple[str, Step]], start: int) -> list[tuple[str, int, int]]:
    rows, current = [], start
    for name, step in steps:
        out = step.stats["kept"]
        rows.append((name, current, out))
        current = out
    return rows


def curate(settings: Settings, since: datetime | None = None, until: datetime | None = None,
           mine_first: bool = True, map_shards: MapShards | None = None) -> CurateResult:
    """Curate one window into a new dataset version (or return the one already made from it).

    ``map_shards`` spreads the scrub and HAP steps over workers (see ``safety_steps``).
    """
    settings.ensure_dirs()
    mined = mine(settings, since, until) if mine_first else None
    with connect(settings) as con:
        interactions = load_interactions(con, since, until)
        decisions = load_decisions(con)
        seeds = list(imported_examples(con, "seed"))
        used = {row[0] for row in con.execute("SELECT id FROM examples").fetchall()}
        versions = dict(con.execute("SELECT version, window_key FROM dataset_versions").fetchall())
        pool = [{**orjson.loads(payload), "kind": kind} for kind, payload in con.execute(
            "SELECT kind, payload FROM examples WHERE split = 'train' ORDER BY id").fetchall()]
        pool += [{**r, "dataset_version": "import"} for r in imported_examples(con, "replay")]
        feedback_ids = sorted(f["id"] for ix in interactions for f in ix.feedback)
    key = content_id("window", [ix.id for ix in interactions], feedback_ids,
                     sorted((i, d.status, d.edited_answer, d.suggested_answer) for i, d in decisions.items()),
                     [s["id"] for s in seeds], config_snapshot(settings))
    same = [v for v, k in versions.items() if k == key]
    if same:
        return CurateResult(same[0], str(settings.datasets_dir / same[0]), False,
                            f"this window was already curated into {same[0]}", key, mined=mined)

    built = build_examples(interactions, decisions, settings)
    exclusions = ExclusionWriter()
    for record, reason in built.rejected:
        exclusions.write(record, reason, "review")
    # In content order, so that which of two near-duplicates dedup keeps never hangs on random response ids.
    candidates = sorted((r for r in (*built.examples, *seeds) if r["id"] not in used),
                        key=lambda r: (content_key(r), r["id"]))
    scrub, hap = safety_steps(settings, exclusions, map_shards, settings.flows.shard_size)
    dedup = Dedup(settings.dedup, field=conversation_text, partition="kind", exclusions=exclusions,
                  index=DedupIndex.load(version_dirs(list(versions), settings), settings.dedup))
    records = iter(candidates)
    for step in (scrub, dedup, hap):
        records = step(records)
    kept = list(records)

    result = CurateResult(None, None, False, "", key, mined=mined, n_new=len(kept))
    result.funnel = [("interactions in window", len(interactions), len(interactions)),
                     ("examples built (+ imported seeds)", len(built.examples) + len(seeds),
                      len(built.examples) + len(seeds)),
                     ("not in an earlier version", len(built.examples) + len(seeds), len(candidates)),
                     *_funnel([("PII scrub", scrub), ("dedup", dedup), ("HAP filter", hap)], len(candidates))]
    result.pii = {k.split(":", 1)[1]: v for k, v in scrub.stats.items() if k.startswith("entity:")}
    result.dedup = {k: v for k, v in dedup.stats.items() if k != "kept"} | {"index_size": len(dedup.index or [])}
    result.hap = {k: v for k, v in hap.stats.items() if k != "kept"}

    version = None
    if kept:
        version = f"v{max([int(m.group(1)) for v in versions if (m := VERSION.match(v))], default=0) + 1}"
        _write(settings, version, kept, pool, dedup, result)
    with connect(settings) as con:
        result.quarantined = quarantine(con, exclusions.to_rejected(source="curate"),
                                        settings.collect.quarantine_raw_chars)
    if version is None:
        result.message = "no new examples in this window: no version written"
    return result


def _write(settings: Settings, version: str, kept: list[Record], pool: list[Record], dedup: Dedup,
           result: CurateResult) -> None:
    for record, split in zip(kept, assign_splits(kept, settings), strict=True):
        record["split"], record["dataset_version"] = split, version
    rows: dict[str, dict[str, list[Record]]] = {k: {s: [] for s in SPLITS} for k in KINDS}
    for record in kept:
        rows[record["kind"]][record["split"]].append(public_row(record, version))
    for kind in KINDS:
        n_replay = round(settings.curate.replay_fraction * len(rows[kind]["train"]))
        replayed = replay_sample([r for r in pool if r["kind"] == kind], n_replay, version)
        rows[kind]["train"] += [public_row(r, version) for r in replayed]
        result.n_replay += len(replayed)
        for split in SPLITS:
            rows[kind][split].sort(key=lambda r: (content_key(r), r["id"]))
    kept_ids = {r["id"] for r in kept}
    index = dedup.kept_index
    keep_rows = [p for p, i in enumerate(index.ids) if i in kept_ids]  # HAP ran after dedup
    final_index = DedupIndex([index.ids[p] for p in keep_rows], [index.partitions[p] for p in keep_rows],
                             [index.norms[p] for p in keep_rows],
                             index.signatures[keep_rows] if keep_rows else None)
    sources = sorted({s for r in kept for s in r.get("source_interactions") or []})
    replay_from = sorted({r["dataset_version"] for k in KINDS for r in rows[k]["train"]} - {version})
    card = {"funnel": result.funnel, "pii": result.pii, "dedup": result.dedup, "hap": result.hap,
            "lineage": [("source interactions", len(sources)), ("imported seed examples",
                                                                 sum(1 for r in kept if r.get("origin") == "seed")),
                        ("replayed from", ", ".join(replay_from) or "-"), ("replayed rows", result.n_replay)],
            "config": config_snapshot(settings)}
    directory = settings.datasets_dir / version
    manifest = write_version(directory, VersionContents(version, rows, card), final_index, settings.dedup)
    result.version, result.uri, result.created = version, str(directory.resolve()), True
    result.n_sft = sum(len(rows["sft"][s]) for s in SPLITS)
    result.n_dpo = sum(len(rows["dpo"][s]) for s in SPLITS)
    result.message = f"wrote {version}: {len(kept)} new examples, {result.n_replay} replayed"
    with connect(settings) as con:
        con.execute("BEGIN TRANSACTION")
        con.executemany(
            "INSERT INTO examples (id, kind, payload, source_interactions, dataset_version, split) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(r["id"], r["kind"], orjson.dumps(public_row(r, version)).decode(),
              orjson.dumps(r.get("source_interactions") or []).decode(), version, r["split"]) for r in kept])
        con.execute(
            "INSERT INTO dataset_versions (version, uri, window_key, n_sft, n_dpo, n_new, content_hash, stats) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [version, result.uri, result.window_key, result.n_sft, result.n_dpo, len(kept),
             manifest["content_hash"], orjson.dumps({"funnel": result.funnel, "pii": result.pii,
                                                     "dedup": result.dedup, "hap": result.hap,
                                                     "replay": result.n_replay}).decode()])
        con.execute("COMMIT")

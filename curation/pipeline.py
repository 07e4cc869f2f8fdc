"""``curate(settings)``: mine -> review queue -> build examples -> the ``curate.steps`` -> write vN.

The one function behind ``flywheel curate``, the Prefect ``curate`` flow and the tests. The warehouse is
held only to read the inputs and to record the result, never while the slow steps run.

The steps are built from settings (default: dedup, scrub, HAP: duplicates go first, so only survivors pay
for the expensive scrub and HAP) and run by ``curation.executor.Pipeline``: in this process, on a pool of
``curate.processes`` workers, or on a Dask cluster (``map_shards`` from ``flows/curate.py``); per-shard
checkpoints under ``FLYWHEEL_HOME/checkpoints`` let an interrupted run resume where it stopped.

A *window* is the set of inputs (interactions in [since, until) with their feedback, the review
decisions, the imported seed data) plus the configuration; its hash is ``dataset_versions.window_key``,
so curating the same window twice returns the existing version. A new version holds only examples no
earlier version holds (by id, and by near-duplicate text through the dedup index of every earlier
version), plus a replay sample (``curate.replay_fraction`` of the new training rows, per kind) drawn from
earlier versions' training rows and imported replay data.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import orjson

from curation import review_queue, store
from curation.datasets import (
    KINDS,
    SPLITS,
    VersionContents,
    assign_splits,
    public_row,
    replay_sample,
    write_version,
)
from curation.dedup import Dedup, DedupIndex, normalise
from curation.examples import build_examples
from curation.executor import MapShards, Pipeline, Progress, local_map
from curation.mining import MineResult, load_interactions, mine
from curation.step import Drop, ExclusionWriter, Record, RunContext, Step, step_class
from flywheel.records import content_key, conversation_text
from flywheel.settings import Settings
from flywheel.versions import next_version, version_number
from flywheel.warehouse import connect, content_id, quarantine


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
    inputs: list[tuple[str, int]] = field(default_factory=list)  # (what, count) before the steps
    steps: list[dict[str, Any]] = field(default_factory=list)  # Pipeline.report(): per step, in order
    mined: MineResult | None = None

    @property
    def funnel(self) -> list[tuple[str, int, int]]:
        """(stage, in, out) rows: the inputs, then one row per step."""
        return [(what, n, n) for what, n in self.inputs] + [(s["name"], s["in"], s["kept"]) for s in self.steps]

    def step(self, name: str) -> dict[str, Any]:
        """One step's stats (empty when that step did not run)."""
        return next((s for s in self.steps if s["name"] == name), {})

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "funnel": self.funnel}


def safety_steps(settings: Settings, exclusions: ExclusionWriter) -> list[Step]:
    """The per-record steps of ``curate.steps`` (scrub, HAP), for data that enters the warehouse another way
    (imports): what is stored is scrubbed and filtered like everything that may reach a dataset."""
    steps = []
    for name in settings.curate.steps:
        cls = step_class(name)
        if cls.per_record:
            step = cls.from_settings(RunContext(settings))
            step.exclusions = exclusions
            steps.append(step)
    return steps


def config_snapshot(settings: Settings) -> dict[str, Any]:
    """The settings that shape a dataset (secrets and how the work is spread left out): part of the window key
    and the data card."""
    scrub = settings.scrub.model_dump(mode="json", exclude={"hash_key", "processes", "raw_retention_days"})
    curate = settings.curate.model_dump(mode="json", exclude={"processes", "shard_size"})
    return {"curate": curate, "judge": settings.judge.model_dump(mode="json", exclude={"api_key"}), "dedup": settings.dedup.model_dump(mode="json"), "scrub": scrub,
            "hap": settings.hap.model_dump(mode="json")}


def version_dirs(versions: list[str], settings: Settings) -> list[Any]:
    """Directories of existing versions, oldest first."""
    return [settings.datasets_dir / v for v in sorted(versions, key=version_number) if version_number(v)]


def curate(settings: Settings, since: datetime | None = None, until: datetime | None = None,
           mine_first: bool = True, map_shards: MapShards | None = None,
           progress: Progress | None = None) -> CurateResult:
    """Curate one window into a new dataset version (or return the one already made from it).

    ``map_shards`` runs the per-record steps' shards elsewhere (a Dask cluster); by default they run on
    ``curate.processes`` local processes. ``progress(stage, done, total)`` is called as work advances.
    """
    settings.ensure_dirs()
    mined = mine(settings, since, until) if mine_first else None
    with connect(settings) as con:
        interactions = load_interactions(con, since, until)
        decisions = review_queue.verdicts(con)
        seeds = list(store.imported_examples(con, "seed"))
        used = store.example_ids(con)
        versions = store.version_windows(con)
        pool = store.training_rows(con)
        pool += [{**r, "dataset_version": "import"} for r in store.imported_examples(con, "replay")]
        feedback_ids = sorted(f["id"] for ix in interactions for f in ix.feedback)
    key = content_id("window", [ix.id for ix in interactions], feedback_ids,
                     sorted((i, d.status, d.edited_answer, d.suggested_answer) for i, d in decisions.items()),
                     [s["id"] for s in seeds], config_snapshot(settings))
    same = [v for v, k in versions.items() if k == key]
    if same:
        return CurateResult(same[0], str(settings.datasets_dir / same[0]), False,
                            f"this window was already curated into {same[0]}", key, mined=mined)

    built = build_examples(interactions, decisions, settings)
    # In content order, so that which of two near-duplicates dedup keeps never hangs on random response ids.
    candidates = sorted((r for r in (*built.examples, *seeds) if r["id"] not in used),
                        key=lambda r: (content_key(r), r["id"]))
    checkpoints = settings.home / "checkpoints" / "curate" / key[:16]
    pipeline = Pipeline(settings.curate.steps, RunContext(settings, version_dirs(list(versions), settings)),
                        map_shards or local_map(settings.curate.processes), settings.curate.shard_size,
                        checkpoints, progress)
    for record, reason in built.rejected:
        pipeline.exclusions.write(record, Drop("review_rejected", reason), "review")
    kept = pipeline.run(candidates)

    result = CurateResult(None, None, False, "", key, mined=mined, n_new=len(kept),
                          inputs=[("interactions in window", len(interactions)),
                                  ("examples built (+ imported seeds)", len(built.examples) + len(seeds)),
                                  ("not in an earlier version", len(candidates))],
                          steps=pipeline.report())
    version = None
    if kept:
        version = next_version(list(versions))
        dedup = next((s for s in pipeline.steps() if isinstance(s, Dedup)), None)
        _write(settings, version, kept, pool, dedup, result)
    with connect(settings) as con:
        result.quarantined = quarantine(con, pipeline.exclusions.to_rejected(source="curate"),
                                        settings.collect.quarantine_raw_chars)
    shutil.rmtree(checkpoints, ignore_errors=True)
    if version is None:
        result.message = "no new examples in this window: no version written"
    return result


def _write(settings: Settings, version: str, kept: list[Record], pool: list[Record], dedup: Dedup | None,
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
    final_index = _final_index(dedup, kept, settings)
    sources = sorted({s for r in kept for s in r.get("source_interactions") or []})
    replay_from = sorted({r["dataset_version"] for k in KINDS for r in rows[k]["train"]} - {version})
    card = {"funnel": result.funnel, "steps": result.steps,
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
        store.save_version(
            con, version, result.uri, result.window_key, (result.n_sft, result.n_dpo, len(kept)),
            manifest["content_hash"], {"funnel": result.funnel, "steps": result.steps, "replay": result.n_replay},
            [(r["id"], r["kind"], orjson.dumps(public_row(r, version)).decode(),
              orjson.dumps(r.get("source_interactions") or []).decode(), r["split"]) for r in kept])


def _final_index(dedup: Dedup | None, kept: list[Record], settings: Settings) -> Any:
    """What later versions deduplicate against: the records this version keeps (later steps dropped some
    that dedup kept), with their signatures from dedup and their text as the dataset stores it (scrubbed)."""

    if dedup is None:
        return DedupIndex()
    final = {r["id"]: r for r in kept}
    index = dedup.kept_index()
    rows = [p for p, i in enumerate(index.ids) if i in final]
    index = index.select(rows)
    index.norms = [normalise(conversation_text(final[i]), settings.dedup.strip_pleasantries) for i in index.ids]
    return index

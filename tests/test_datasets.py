"""The versioned dataset writer: loadable layout, byte-identical output, cluster-stable split, replay."""

from __future__ import annotations

from pathlib import Path

from curation.datasets import VersionContents, assign_splits, public_row, replay_sample, write_version
from curation.dedup import DedupIndex
from demo.domain import FACTS


def _sft(i: int, question: str) -> dict:
    return {"id": f"sft-{i:03d}", "kind": "sft", "source_interactions": [f"ix-{i}"],
            "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": "Answer."}]}


def _contents(version: str = "v1") -> VersionContents:
    rows = [public_row(_sft(i, f.questions[0]), version) for i, f in enumerate(FACTS[:6])]
    dpo = {"id": "dpo-1", "kind": "dpo", "prompt": [{"role": "user", "content": "Plus price?"}],
           "chosen": [{"role": "assistant", "content": "8 dollars."}],
           "rejected": [{"role": "assistant", "content": "5 dollars."}], "source_interactions": ["ix-9"]}
    return VersionContents(version, {"sft": {"train": rows[:5], "eval": rows[5:]},
                                     "dpo": {"train": [public_row(dpo, version)], "eval": []}},
                           {"funnel": [("built", 7, 7)], "config": {"seed": 1},
                            "steps": [{"name": "scrub", "in": 7, "kept": 7, "dropped": {}, "seconds": 0.1,
                                       "counts": {"replaced:PERSON": 2}, "examples": {},
                                       "by_language": {"en": {"in": 7, "kept": 7, "replaced:PERSON": 2}}}]})


def test_written_version_loads_with_datasets_including_an_empty_split(tmp_path: Path, settings) -> None:
    from datasets import load_from_disk

    manifest = write_version(tmp_path / "v1", _contents(), DedupIndex(), settings.dedup)
    sft, dpo = load_from_disk(str(tmp_path / "v1" / "sft")), load_from_disk(str(tmp_path / "v1" / "dpo"))
    assert (sft["train"].num_rows, sft["eval"].num_rows, dpo["train"].num_rows, dpo["eval"].num_rows) == (5, 1, 1, 0)
    assert dpo["train"][0]["chosen"] == [{"role": "assistant", "content": "8 dollars.", "tool_calls": None}]
    assert dpo["train"][0]["tools"] is None
    assert manifest["counts"] == {"sft": {"train": 5, "eval": 1}, "dpo": {"train": 1, "eval": 0}}
    assert "| replaced:PERSON | 2 | 2 |" in (tmp_path / "v1" / "README.md").read_text()
    assert not (tmp_path / "v1.partial").exists()


def test_same_contents_give_byte_identical_directories(tmp_path: Path, settings) -> None:
    a = write_version(tmp_path / "a" / "v1", _contents(), DedupIndex(), settings.dedup)
    b = write_version(tmp_path / "b" / "v1", _contents(), DedupIndex(), settings.dedup)
    assert a == b
    for rel in a["files"]:
        assert (tmp_path / "a" / "v1" / rel).read_bytes() == (tmp_path / "b" / "v1" / rel).read_bytes()


def test_split_keeps_near_duplicate_prompts_together_and_is_stable(settings) -> None:
    settings.curate.eval_fraction = 0.3
    records = []
    for i, fact in enumerate(FACTS):
        q = fact.questions[0]
        records += [_sft(3 * i, q), _sft(3 * i + 1, "hi, " + q.lower() + " thanks"), _sft(3 * i + 2, q + "!!")]
    splits = assign_splits(records, settings)
    for i in range(len(FACTS)):
        assert len(set(splits[3 * i:3 * i + 3])) == 1  # a cluster never straddles the split
    assert 0 < splits.count("eval") < len(records)
    assert assign_splits(list(reversed(records)), settings) == list(reversed(splits))


def test_tiny_sets_still_get_one_eval_and_one_train_cluster(settings) -> None:
    two = [_sft(0, "How do I export my notes?"), _sft(1, "What is your refund policy?")]
    assert sorted(assign_splits(two, settings)) == ["eval", "train"]
    assert assign_splits([_sft(0, "How do I export my notes?")], settings) == ["train"]


def test_replay_sample_is_deterministic_and_differs_per_version() -> None:
    pool = [_sft(i, f"question number {i}") for i in range(50)]
    assert replay_sample(pool, 5, "v3") == replay_sample(list(reversed(pool)), 5, "v3")
    assert replay_sample(pool, 5, "v3") != replay_sample(pool, 5, "v4")
    assert len(replay_sample(pool, 80, "v3")) == 50
    renamed = [{**r, "id": f"sft-other-{49 - i}"} for i, r in enumerate(pool)]  # another run's response ids
    assert [r["messages"] for r in replay_sample(renamed, 5, "v3")] == [r["messages"] for r in
                                                                       replay_sample(pool, 5, "v3")]

"""Dedup: datasketch-identical signatures, exact + near duplicates, nested fields, odd texts, the
incremental index, and the ``flywheel dedup`` CLI contract (run as a user would, in a subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest

from curation.dedup import (
    Dedup,
    DedupIndex,
    Scheme,
    find_duplicates,
    normalise,
    signature_reference,
    signatures,
)
from flywheel.settings import DedupSettings

FLYWHEEL = str(Path(sys.executable).with_name("flywheel"))
TEXTS = ["How much does the Plus plan cost?", "Wie viel kostet der Plus-Tarif im Monat?",
         "Plusプランの料金はいくらですか？", "ok", "", "!!!", "x" * 5000]


@pytest.mark.parametrize("unit,k", [("char", 3), ("word", 2), ("char", 5), ("char", 2)])
def test_vectorised_signatures_equal_datasketch_update_loop(unit: str, k: int) -> None:
    scheme = Scheme("test", unit, k, 0.7, 0.05)
    norms = [normalise(t) for t in TEXTS]
    fast = signatures(norms, scheme, 128)
    for norm, row in zip(norms, fast, strict=True):
        assert np.array_equal(row, signature_reference(norm, scheme, 128)), norm[:40]


def _records(texts: list[str]) -> list[dict]:
    return [{"id": f"r{i}", "text": t} for i, t in enumerate(texts)]


def test_trivial_variants_are_flagged_as_duplicates_of_the_first_occurrence() -> None:
    original = "My note 'Quarterly budget' disappeared after syncing on my iPad, can you help me get it back?"
    variants = [original.upper(), "  My  note 'Quarterly budget'   disappeared after syncing on my iPad,can you help "
                "me get it back", "Hi team, " + original, original + " Thanks in advance!",
                original.replace("disappeared", "disapeared")]
    unrelated = ["How much does the Plus plan cost?", "Can I export my notes to PDF?", "Does the app work offline?",
                 "How do I enable two-factor authentication?", "Is there a student discount?",
                 "Where can I download my invoices?"]
    step = Dedup(DedupSettings(), annotate=True)
    out = list(step(_records([original, *unrelated[:3], *variants, *unrelated[3:]])))
    assert [r["id"] for r in out] == [f"r{i}" for i in range(len(out))]  # same order, every record
    dup_of = {r["text"]: r["dup_of"] for r in out}
    assert dup_of[original] is None
    assert all(dup_of[v] == "r0" for v in variants)
    assert all(dup_of[u] is None for u in unrelated)
    assert step.stats.counts["exact"] + step.stats.counts["near"] == len(variants)


def test_different_questions_on_one_template_are_not_duplicates() -> None:
    texts = ["How much does the Plus plan cost?", "How much does the Team plan cost?",
             "How much storage does Plus include?", "How many notes can I make on the Free plan?"]
    assert find_duplicates(texts, DedupSettings()) == [None] * len(texts)


def test_conversations_deduplicate_on_a_nested_field_and_bad_records_are_excluded_with_a_reason() -> None:
    def conv(i: int, question: str) -> dict:
        return {"id": f"c{i}", "messages": [{"role": "user", "content": question},
                                            {"role": "assistant", "content": "Open Settings, choose Export."}]}

    records = [conv(0, "How do I export my notes to PDF?"), conv(1, "how do i export my notes to pdf"),
               conv(2, "Can I share a note with my team?"), {"id": "c3", "text": "no messages here"},
               {"messages": [{"role": "user", "content": "no id"}]}]
    step = Dedup(DedupSettings(), field="messages.content")
    kept = list(step(records))
    assert [r["id"] for r in kept] == ["c0", "c2"]
    reasons = [ex.reason for ex in step.exclusions.items]
    assert any(r.startswith("exact_duplicate: of record c0") for r in reasons)
    assert any("field 'messages.content': missing" in r for r in reasons)
    assert any(r.startswith("invalid: id: missing") for r in reasons)
    assert step.stats.dropped == {"exact_duplicate": 1, "invalid": 2}


def test_empty_huge_and_non_english_texts() -> None:
    huge = "Lumen Notes sync log line. " * 20_000  # 540k characters
    texts = ["", "", "???", huge, huge.replace("sync", "Sync"), "Как экспортировать заметки в PDF?",
             "как экспортировать заметки в pdf", "ノートをPDFにエクスポートする方法は？", "ノートを PDF にエクスポートする方法は"]
    dups = find_duplicates(texts, DedupSettings())
    assert dups[0] is None and dups[1].of == 0 and dups[1].how == "exact"  # empty equals empty
    assert dups[2] is None  # "???" normalises to nothing, compared on its raw form
    assert dups[4].of == 3
    assert dups[6].of == 5 and dups[8].of == 7


def test_chinese_sentences_with_one_or_two_changed_characters_are_near_duplicates() -> None:
    original = "我的订单已经付款三天了但是物流信息一直没有更新怎么办"  # 26 characters
    variants = ["我的订单已经付款三天了但是物流信息一直没有更新怎么弄",   # one character replaced
                "我的订单已经付款两天了但是物流消息一直没有更新怎么办",   # two replaced
                "您好，我的订单已经付款三天了，但是物流信息一直没有更新，怎么办？谢谢",  # greeting, punctuation, thanks
                "我的订单已付款三天了但是物流信息一直没有更新怎么办"]     # one dropped
    different = ["浅米色是什么颜色", "藕粉色是什么颜色", "因为的反义词是什么", "刻薄的反义词是什么",
                 "我想把收货地址改成公司的地址可以吗", "How do I change my delivery address?"]
    dups = find_duplicates([original, *different, *variants], DedupSettings())
    assert dups[:1 + len(different)] == [None] * (1 + len(different))  # two-character changes in 8-9: other questions
    assert [d.of if d else None for d in dups[1 + len(different):]] == [0] * len(variants)


def test_short_chinese_question_with_two_scattered_changes_is_caught_here_and_across_versions(
        tmp_path: Path) -> None:
    original = "我想修改账户的登录密码"  # 11 characters
    variants = ["我要修改账户的登陆密码",  # two characters replaced, far apart
                "我想修改帐户登录密码",  # one replaced, one dropped
                "我想修改下账户的登陆密码"]  # one inserted, one replaced
    dups = find_duplicates([original, "怎么注销这个账户", *variants], DedupSettings())
    assert [d.of if d else None for d in dups] == [None, None, 0, 0, 0]
    settings = DedupSettings()
    first = Dedup(settings)
    list(first(_records([original])))
    first.kept_index().save(tmp_path / "v1", settings)
    later = Dedup(settings, index=DedupIndex.load([tmp_path / "v1"], settings), annotate=True)
    assert [r["dup_of"] for r in later([{"id": "n0", "text": variants[0]}])] == ["r0"]


def test_the_same_question_in_traditional_characters_is_a_duplicate_here_and_across_versions(
        tmp_path: Path) -> None:
    """Taiwan and Hong Kong write Traditional characters: "请问怎么修改收货地址" and "請問怎麼修改收貨地址" are one
    question, but shared almost no character pair. An index written before Traditional was read as Simplified
    (its stored text still in Traditional, greeting and thanks unstripped) is normalised and hashed again on load."""
    simplified_text, traditional_text = "请问怎么修改收货地址", "請問怎麼修改收貨地址"
    dups = find_duplicates([simplified_text, traditional_text, "请问怎么修改登录密码"], DedupSettings())
    assert [d.of if d else None for d in dups] == [None, 0, None]
    settings = DedupSettings()
    first = Dedup(settings)
    list(first(_records(["請問退貨要多久？謝謝"])))
    saved = first.kept_index().save(tmp_path / "v1", settings)[0]
    meta, row = _read(saved)
    _write(saved, [meta, {**row, "norm": "請問退貨要多久 謝謝"}])    # as earlier releases stored it: 請問, 謝謝 kept
    later = Dedup(settings, index=DedupIndex.load([tmp_path / "v1"], settings), annotate=True)
    assert [r["dup_of"] for r in later([{"id": "n0", "text": "请问退货要多久？谢谢"}])] == ["r0"]


def test_the_same_question_spaced_out_character_by_character_is_a_duplicate() -> None:
    dups = find_duplicates(["请问怎么修改收货地址", "请 问 怎 么 修 改 收 货 地 址", "请问 怎么修改 登录密码"],
                           DedupSettings())
    assert [d.of if d else None for d in dups] == [None, 0, None]


def test_short_chinese_questions_that_swap_one_word_stay_distinct() -> None:
    # Two edits are allowed in an 8-11 character Chinese question, but not two that replace one word.
    texts = ["怎么开通自动续费", "怎么关闭自动续费",  # opposite requests
             "北京到上海的高铁票价", "北京到广州的高铁票价",  # another city
             "怎么给猫咪洗澡才安全", "怎么给狗洗澡才安全"]  # a two-character word for a one-character one
    assert find_duplicates(texts, DedupSettings()) == [None] * len(texts)


def test_short_prompts_with_one_typo_are_caught_but_other_numbers_are_not() -> None:
    texts = ["write me a usability test", "Write me a usability tset!", "what is argocd", "what is areocd",
             "explain version 2 of the api", "explain version 3 of the api", "rewrite", "rewtite"]
    dups = find_duplicates(texts, DedupSettings())
    assert [d.of if d else None for d in dups] == [None, 0, None, 2, None, None, None, 6]


def test_partitions_never_duplicate_each_other() -> None:
    records = [{"id": "a", "kind": "sft", "text": "Reset my password please"},
               {"id": "b", "kind": "dpo", "text": "Reset my password please"},
               {"id": "c", "kind": "dpo", "text": "reset my password, please!"}]
    out = list(Dedup(DedupSettings(), partition="kind", annotate=True)(records))
    assert [r["dup_of"] for r in out] == [None, None, "b"]


def test_index_of_an_earlier_version_flags_new_near_duplicates(tmp_path: Path) -> None:
    settings = DedupSettings()
    first = Dedup(settings)
    list(first(_records(["How long is version history kept on Plus?", "Can I pay with PayPal?"])))
    first.kept_index().save(tmp_path / "v1", settings)
    index = DedupIndex.load([tmp_path / "v1", tmp_path / "missing"], settings)
    assert index.ids == ["r0", "r1"]
    second = Dedup(settings, index=index, annotate=True)
    out = list(second([{"id": "n0", "text": "how long is version history kept on plus"},
                       {"id": "n1", "text": "Do you have a student discount?"}]))
    assert [r["dup_of"] for r in out] == ["r0", None]
    assert second.stats.counts["earlier_version"] == 1
    # Changed shingling: the stored signatures are recomputed from the stored texts, same answer.
    other = DedupSettings(shingle=4)
    again = Dedup(other, index=DedupIndex.load([tmp_path / "v1"], other), annotate=True)
    assert [r["dup_of"] for r in again([{"id": "n0", "text": "How long is version history kept on Plus!"}])] == ["r0"]


def _write(path: Path, records: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def _read(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_cli_keeps_first_occurrences(tmp_path: Path) -> None:
    records = [{"id": "a", "text": "How do I turn on two-factor authentication?", "extra": {"k": 1}},
               {"id": "b", "text": "Which payment methods do you accept?"},
               {"id": "c", "text": "hi, how do I turn on two factor authentication? thanks"},
               {"id": "d", "text": "Which payment methods do you accept?"},
               {"id": "e", "text": "Does Lumen work offline?"}]
    src = _write(tmp_path / "in.jsonl", records)
    out = tmp_path / "out.jsonl"
    proc = subprocess.run([FLYWHEEL, "dedup", str(src), "-o", str(out), "--field", "text"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert _read(out) == [records[0], records[1], records[4]]


def test_cli_annotate_keeps_every_record_in_order_with_dup_of(tmp_path: Path) -> None:
    records = [{"id": 1, "body": {"text": "Can I import notes from Evernote?"}},
               {"id": 2, "body": {"text": "What is your refund policy?"}},
               {"id": 3, "body": {"text": "Can I import notes from Evernote??"}},
               {"id": 4, "body": {"text": "Hello! can I import notes from evernote, thanks"}}]
    src = _write(tmp_path / "in.jsonl", records)
    out = tmp_path / "out.jsonl"
    proc = subprocess.run([FLYWHEEL, "dedup", str(src), "-o", str(out), "--field", "body.text", "--annotate"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert _read(out) == [{**r, "dup_of": d} for r, d in zip(records, [None, None, 1, 1], strict=True)]


def test_cli_reports_bad_lines_and_goes_on(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "text": "hello there friend"}\nnot json\n{"id": "b"}\n')
    out = tmp_path / "out.jsonl"
    proc = subprocess.run([FLYWHEEL, "dedup", str(src), "-o", str(out), "--field", "text"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0
    assert [r["id"] for r in _read(out)] == ["a"]
    assert "line 2: not valid JSON" in proc.stderr and "field 'text': missing in record b" in proc.stderr

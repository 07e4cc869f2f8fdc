"""Near-duplicate benchmark on public prompts written by others, English and Chinese, against datasketch.

Originals are real prompts and questions (see ``SOURCES``; read from ``--data``, default /work/data, laid out as
benchmarks/DATA.md describes); planted into them are trivial variants of some originals, each placed after its
original:

* English: case, spacing, punctuation, a greeting or "thanks" added, one typo (swap, drop, double or replace a
  letter of one word);
* Chinese: one or two characters replaced, dropped or inserted, or punctuation / a greeting / 谢谢 added.

Recall = planted variants flagged as duplicates of their own original (or of the record that original was
itself flagged as a duplicate of); precision = the share of flags that are such right ones (a flag between two
distinct originals counts against it, though inspection shows most are real near-duplicates in the source). Both are reported per language and
per length, for ``flywheel dedup`` and for what a user would pick instead: datasketch ``MinHash.bulk`` +
``MinHashLSH`` at the same threshold with an exact Jaccard check of every candidate, on the same normalised
text and character 3-grams. The *dev* sources tuned the Chinese scheme and the edit test; the *test* sources
were not looked at while tuning.

    .venv/bin/python benchmarks/dedup_bench.py [--split test] [--variants 0.4] [--data /work/data]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curation.dedup import Dedup, normalise  # noqa: E402
from flywheel.settings import DedupSettings  # noqa: E402

SOURCES = {
    ("en", "dev"): ["en_instructions/arena_hard_prompts/arena_hard_prompts.jsonl",
                    "en_conversations/sharegpt_sample/sharegpt_sample.jsonl"],
    ("en", "test"): ["en_instructions/koala_test_set/koala_test_set.jsonl",
                     "en_instructions/oasst_prompts/prompt_lottery_en_250_text.jsonl",
                     "en_instructions/oasst_prompts/en_100_text.jsonl",
                     "en_instructions/self_instruct_user_oriented/user_oriented_instructions.jsonl",
                     "en_instructions/mt_bench/question.jsonl"],
    ("zh", "dev"): ["zh_questions/lcqmc/dev.tsv", "zh_dialogue/kdconv/dev.turns.jsonl"],
    ("zh", "test"): ["zh_questions/bq_corpus/test.tsv", "zh_dialogue/kdconv/test.turns.jsonl"],
}
GREETINGS = {"en": ["Hi, ", "Hello! ", "Hey there, ", "Good morning, ", "Hi team, "], "zh": ["你好，", "您好，", "请问"]}
THANKS = {"en": [" Thanks!", " Thank you.", " thanks a lot", " Thanks in advance!"], "zh": ["谢谢！", "，谢谢", "。多谢"]}
COMMON_HAN = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严"


def _prompts(path: Path) -> list[str]:
    out = []
    if path.suffix == ".tsv":
        for line in path.read_text(encoding="utf-8").splitlines():
            out.append(line.split("\t")[0])
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if isinstance(row, str):
            out.append(row)
        elif "conversations" in row:
            out += [t["value"] for t in row["conversations"] if t.get("from") == "human"]
        elif "text" in row:
            out.append(row["text"])
        elif "prompt" in row:
            out.append(row["prompt"])
        elif "instruction" in row:
            out.append(row["instruction"])
        elif "turns" in row:
            turn = row["turns"][0]
            out.append(turn["content"] if isinstance(turn, dict) else turn)
    return out


def originals(data: Path, lang: str, split: str, limit: int) -> list[str]:
    """Distinct (after normalisation) prompts of the split's sources, in file order, at most ``limit``."""
    seen, out = set(), []
    for name in SOURCES[(lang, split)]:
        path = data / name
        if not path.is_file():
            sys.exit(f"dedup_bench: {path} is missing; rebuild the public sets with benchmarks/public_data.py "
                     "(see benchmarks/DATA.md), or pass --data")
        for text in _prompts(path):
            text = text.strip()
            key = normalise(text)
            if text and len(text) <= 2000 and key and key not in seen:
                seen.add(key)
                out.append(text)
    return out[:limit]


def _english_typo(text: str, rng: random.Random) -> str:
    tokens = text.split(" ")
    words = [i for i, w in enumerate(tokens) if len(w) >= 4 and w.isalpha()]
    if not words:
        return text + "s"
    i = rng.choice(words)
    w, p = tokens[i], rng.randrange(1, len(tokens[i]) - 1)
    op = rng.choice(["swap", "drop", "double", "replace"])
    tokens[i] = {"swap": w[:p] + w[p + 1] + w[p] + w[p + 2:], "drop": w[:p] + w[p + 1:],
                 "double": w[:p] + w[p] + w[p:], "replace": w[:p] + rng.choice("aeiourstnl") + w[p + 1:]}[op]
    return " ".join(tokens)


def _chinese_edits(text: str, rng: random.Random, n: int) -> str:
    chars = list(text)
    for _ in range(n):
        han = [i for i, c in enumerate(chars) if "\u4e00" <= c <= "\u9fff"]
        if not han:
            break
        i = rng.choice(han)
        op = rng.choice(["replace", "replace", "drop", "insert"])
        if op == "replace":
            chars[i] = rng.choice(COMMON_HAN.replace(chars[i], ""))
        elif op == "drop" and len(han) > 4:
            del chars[i]
        else:
            chars.insert(i, rng.choice(COMMON_HAN))
    return "".join(chars)


def variant(text: str, lang: str, rng: random.Random) -> tuple[str, str]:
    """(kind, variant) of one original."""
    kinds = (["case", "spacing", "punctuation", "greeting", "thanks", "typo"] if lang == "en"
             else ["1 char", "1 char", "2 chars", "2 chars", "punctuation", "greeting", "thanks"])
    kind = rng.choice(kinds)
    if kind == "case":
        return kind, rng.choice([text.lower(), text.upper(), text.title()])
    if kind == "spacing":
        return kind, "  " + text.replace(" ", "  ", 3) + " "
    if kind == "punctuation":
        stripped = text.rstrip("?.!？。！")
        return kind, rng.choice([stripped, stripped + ("??" if lang == "en" else "？？"), stripped + "!"])
    if kind == "greeting":
        return kind, rng.choice(GREETINGS[lang]) + text
    if kind == "thanks":
        return kind, text + rng.choice(THANKS[lang])
    if kind == "typo":
        return kind, _english_typo(text, rng)
    return kind, _chinese_edits(text, rng, 1 if kind == "1 char" else 2)


def make_corpus(base: list[str], lang: str, fraction: float, seed: int = 11) -> tuple[list[dict], dict[str, tuple]]:
    """Records with each variant placed after its original; truth: variant id -> (original id, kind, length)."""
    rng = random.Random(f"{lang}:{seed}")
    keyed = [((i, 0, i), {"id": f"p{i}", "text": t}) for i, t in enumerate(base)]
    truth: dict[str, tuple] = {}
    for k, i in enumerate(rng.sample(range(len(base)), int(len(base) * fraction))):
        kind, text = variant(base[i], lang, rng)
        if normalise(text) == normalise(base[i]) and kind in ("1 char", "2 chars", "typo"):
            continue  # the edit touched nothing that survives normalisation
        truth[f"v{k}"] = (f"p{i}", kind, len(normalise(base[i]).replace(" ", "")))
        keyed.append(((rng.randrange(i, len(base)), 1, k), {"id": f"v{k}", "text": text}))
    keyed.sort(key=lambda kr: kr[0])
    return [r for _, r in keyed], truth


def ours(records: list[dict], settings: DedupSettings) -> dict[str, str | None]:
    step = Dedup(settings, annotate=True)
    return {r["id"]: r["dup_of"] for r in step(records)}


def datasketch_baseline(records: list[dict], settings: DedupSettings) -> dict[str, str | None]:
    """What a user would pick: MinHash.bulk over every text, MinHashLSH query-then-insert in order, and the exact
    Jaccard of the shingle sets checked for every candidate (same normalised text, character 3-grams)."""
    from datasketch import MinHash, MinHashLSH

    k = settings.shingle
    shingle_sets = []
    for r in records:
        norm = normalise(r["text"]).replace(" ", "")
        shingle_sets.append({norm[p:p + k].encode() for p in range(max(len(norm) - k + 1, 1))})
    sketches = MinHash.bulk([list(s) for s in shingle_sets], num_perm=settings.num_perm)
    lsh = MinHashLSH(threshold=settings.threshold, num_perm=settings.num_perm)
    kept: dict[str, int] = {}
    out: dict[str, str | None] = {}
    for pos, (r, sketch) in enumerate(zip(records, sketches, strict=True)):
        mine = shingle_sets[pos]
        hits = sorted((kept[h], h) for h in lsh.query(sketch)
                      if len(mine & shingle_sets[kept[h]]) / max(len(mine | shingle_sets[kept[h]]), 1)
                      >= settings.threshold)
        if hits:
            out[r["id"]] = hits[0][1]
        else:
            lsh.insert(r["id"], sketch)
            kept[r["id"]] = pos
            out[r["id"]] = None
    return out


def representative(found: dict[str, str | None], record_id: str) -> str:
    """The kept record a record stands for: itself, or what it was flagged as a duplicate of."""
    return found.get(record_id) or record_id


def right(found: dict[str, str | None], truth: dict[str, tuple], variant_id: str) -> bool:
    """A planted variant is caught when it points at its original, or at the record its original was itself
    (rightly or not) flagged as a duplicate of: that is the one a deduplicated dataset keeps."""
    original = truth[variant_id][0]
    return found.get(variant_id) in (original, representative(found, original))


def score(found: dict[str, str | None], truth: dict[str, tuple], keep: Callable[[tuple], bool] = lambda t: True
          ) -> tuple[float, int]:
    chosen = [v for v, t in truth.items() if keep(t)]
    return sum(1 for v in chosen if right(found, truth, v)) / max(len(chosen), 1), len(chosen)


def precision(found: dict[str, str | None], truth: dict[str, tuple]) -> tuple[float, int, int]:
    """(share of flags that are right, flags, originals flagged as another original's duplicate)."""
    flagged = [k for k, v in found.items() if v is not None]
    return (sum(1 for k in flagged if k in truth and right(found, truth, k)) / max(len(flagged), 1), len(flagged),
            sum(1 for k in flagged if k not in truth))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path("/work/data"))
    parser.add_argument("--split", choices=["dev", "test"], default="test")
    parser.add_argument("--variants", type=float, default=0.4, help="share of originals given a planted variant")
    parser.add_argument("--limit", type=int, default=8000, help="originals per language at most")
    args = parser.parse_args()
    settings = DedupSettings()
    ours([{"id": "warm-up", "text": "imports and permutations, once per process, outside the timings"}], settings)
    datasketch_baseline([{"id": "warm-up", "text": "the same for datasketch"}], settings)
    print(f"split {args.split}; threshold {settings.threshold} (Latin) / {settings.cjk_threshold} (CJK), "
          f"{settings.num_perm} perms; baseline: datasketch MinHash.bulk + MinHashLSH + exact Jaccard check")
    for lang in ("en", "zh"):
        base = originals(args.data, lang, args.split, args.limit)
        records, truth = make_corpus(base, lang, args.variants)
        rows = []
        for name, fn in (("flywheel dedup", ours), ("datasketch bulk + LSH + Jaccard", datasketch_baseline)):
            started = time.perf_counter()
            found = fn(records, settings)
            seconds = time.perf_counter() - started
            rows.append((name, found, seconds))
        print(f"\n{lang}: {len(base)} originals, {len(truth)} planted variants, {len(records)} texts")
        print(f"{'':34s} {'texts/s':>8s} {'recall':>7s} {'prec.':>6s} {'flags':>6s} {'orig.':>6s}  "
              "recall by kind / by length (orig.: originals flagged as a duplicate of another original)")
        for name, found, seconds in rows:
            recall, _ = score(found, truth)
            prec, flags, originals_flagged = precision(found, truth)
            kinds = sorted({t[1] for t in truth.values()})
            by_kind = "  ".join(f"{kind} {score(found, truth, lambda t, k=kind: t[1] == k)[0]:.2f}" for kind in kinds)
            by_len = "  ".join(f"{label} {score(found, truth, cond)[0]:.2f} (n={score(found, truth, cond)[1]})"
                               for label, cond in (("<=12", lambda t: t[2] <= 12), ("13-30", lambda t: 12 < t[2] <= 30),
                                                   ("31-100", lambda t: 30 < t[2] <= 100), (">100", lambda t: t[2] > 100)))
            print(f"{name:34s} {len(records) / seconds:8.0f} {recall:7.3f} {prec:6.3f} {flags:6d} {originals_flagged:6d}"
                  f"  {by_kind}")
            print(f"{'':34s} {'':8s} {'':7s} {'':6s} {'':6s} {'':6s}  {by_len}")
        print(f"speed ratio (flywheel / datasketch): {rows[1][2] / rows[0][2]:.1f}x")


if __name__ == "__main__":
    main()

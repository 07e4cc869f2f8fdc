"""HAP benchmark on public data written and labelled by others: ours (offline) vs alt-profanity-check, same run.

Quality, at the configured threshold (0.5), on splits the models were not trained on (``curation.hap_data``
says which split went where; the ``tune`` rows were used to pick regularisation and the stack, so they are
not blind):

- explicit abuse: HateXplain test (offensive or hate vs normal), OLID test (offensive vs not), implicit-hate
  test part (explicit hate vs not hate); HateCheck's explicit functionalities vs its non-hateful cases;
- implicit hate: implicit-hate test part (implicit vs not hate), HateCheck implicit derogation vs its
  neutral/positive statements about groups and counter-speech, Multitarget-CONAN hateful statements vs the
  counter-narratives that answer them (discussing a group is not hate), the Dynamically Generated Hate Speech
  dataset's test split (hate vs rewrites that are not), ETHOS; hate or vulgarity: the Gab Hate Corpus test file;
- Chinese offensive language: COLD dev, ``report`` half (the ``tune`` half picked the regularisation), and
  ToxiCN's test file (other annotators and platforms; general insults as well as hate);
- full-width and mixed text: HateXplain test written in full-width letters; COLD report positives after an
  ordinary English sentence (one mixed text);
- benign flag rate per set and language: real prompts, instructions, answers and dialogue turns (English and
  Chinese), a text flagged when any of its sentences is.

Speed on real-shaped unseen text (ShareGPT test turns, Chinese dialogue turns, harmful posts): ours against
the fair baseline of issue 15, batched MiniLM + the same head on every sentence, and alt-profanity-check.

    FLYWHEEL_PUBLIC_DATA=/work/data .venv/bin/python benchmarks/hap_bench.py [--threads 1] [--speed-texts 600]
        [--previous DIR]   # also score with the models in DIR (e.g. an earlier curation/models), same run
        [--only en|zh]     # quality on one language's sets only
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from curation import hap_data as data
from curation.hap import HapScorer, LexicalScorer, OfflineScorer
from curation.hap_models import model_text, sigmoid
from curation.text import sentences
from flywheel.settings import HapSettings

EXPLICIT_HC = ("derog_neg_emote_h", "derog_neg_attrib_h", "derog_dehum_h", "threat_dir_h", "threat_norm_h",
               "slur_h", "profanity_h", "ref_subs_clause_h", "ref_subs_sent_h", "negate_pos_h",
               "phrase_question_h", "phrase_opinion_h", "spell_char_swap_h", "spell_char_del_h",
               "spell_space_del_h", "spell_space_add_h", "spell_leet_h")
NEUTRAL_HC = ("ident_neutral_nh", "ident_pos_nh", "counter_quote_nh", "counter_ref_nh", "negate_neg_nh")


def full_width(text: str) -> str:
    """ASCII letters, digits and spaces in their full-width forms (what NFKC undoes)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else "\u3000" if c == " " else c for c in text)


def prf(scores: Sequence[float], labels: Sequence[int], threshold: float) -> tuple[float, float, float]:
    flagged = np.asarray(scores) >= threshold
    truth = np.asarray(labels) == 1
    tp = int((flagged & truth).sum())
    precision = tp / max(int(flagged.sum()), 1)
    recall = tp / max(int(truth.sum()), 1)
    return precision, recall, 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def labelled_sets() -> dict[str, list[data.Example]]:
    hatecheck = data.hatecheck()
    implicit = data.implicit_hate("test")
    cold_report = data.cold("report")
    english_lead = [s for s in data.english_benign("sharegpt_human_test") if 20 < len(s) < 120 and "\n" not in s]
    rng = random.Random(0)
    return {
        "EN explicit: HateXplain test": data.hatexplain("test"),
        "EN explicit: OLID test": data.olid("test"),
        "EN explicit: implicit-hate test, explicit vs none": [e for e in implicit if e.kind != "implicit"],
        "EN explicit: HateCheck explicit vs non-hateful": [e for e in hatecheck
                                                           if e.kind in EXPLICIT_HC or e.label == 0],
        "EN implicit: implicit-hate test, implicit vs none": [e for e in implicit if e.kind != "explicit"],
        "EN implicit: HateCheck implicit vs neutral/counter": [e for e in hatecheck
                                                               if e.kind == "derog_impl_h" or e.kind in NEUTRAL_HC],
        "EN implicit: CONAN hate vs counter-narratives (1 pair in 5)": [e for i, e in enumerate(data.conan())
                                                                         if i // 2 % 5 == 0],
        "EN hate: DynaHate test (hate vs rewrites that are not)": data.dynahate(),
        "EN hate: ETHOS (all)": data.ethos(),
        "EN hate or vulgar: Gab Hate Corpus test file": data.ghc_test(),
        "EN tune (not blind): OLID dev + implicit-hate dev": data.olid("dev") + data.implicit_hate("dev"),
        "ZH offensive: COLD dev report half": cold_report,
        "ZH tune (not blind): COLD dev tune half": data.cold("tune"),
        "ZH toxic: ToxiCN test (other topics, measure only)": data.toxicn(),
        "full-width: HateXplain test": [data.Example(full_width(e.text), e.label, e.kind)
                                        for e in data.hatexplain("test")],
        "mixed: English sentence + COLD report": [data.Example(f"{rng.choice(english_lead)} {e.text}", e.label,
                                                               e.kind) for e in cold_report],
    }


def benign_sets() -> dict[str, tuple[str, list[str]]]:
    out = {name: ("en", data.english_benign(name)) for name in data.ENGLISH_BENIGN_TEST}
    out.update({name: ("zh", data.chinese_benign(name)) for name in data.CHINESE_BENIGN_TEST})
    return out


def quality(scorers: dict[str, HapScorer], threshold: float, languages: Sequence[str] = ("en", "zh")) -> None:
    """``languages``: the labelled sets named for them (EN / ZH; full-width and mixed go with both) and the
    benign sets in them."""
    names = list(scorers)
    header = " | ".join(f"{n} P / R / F1" for n in names)
    print(f"\n{'labelled set':52} {'n':>5} {'pos':>5} | {header}")
    for set_name, examples in labelled_sets().items():
        prefix = set_name[:2].lower()
        if not (prefix in languages if prefix in ("en", "zh") else {"en", "zh"} <= set(languages)):
            continue
        texts, labels = [e.text for e in examples], [e.label for e in examples]
        cells = []
        for scorer in scorers.values():
            p, r, f = prf(scorer.score(texts), labels, threshold)
            cells.append(f"{p:.3f} / {r:.3f} / {f:.3f}")
        print(f"{set_name:52} {len(texts):5} {sum(labels):5} | " + " | ".join(f"{c:>22}" for c in cells), flush=True)
    print(f"\n{'benign set (texts flagged)':52} {'n':>5} {'lang':>5} | " + " | ".join(f"{n:>22}" for n in names))
    totals: dict[str, Counter] = {n: Counter() for n in names}
    for set_name, (lang, texts) in benign_sets().items():
        if lang not in languages:
            continue
        cells = []
        for name, scorer in scorers.items():
            flagged = int((np.asarray(scorer.score(texts)) >= threshold).sum())
            totals[name][lang + ":flagged"] += flagged
            totals[name][lang + ":n"] += len(texts)
            cells.append(f"{flagged / len(texts):.2%} ({flagged})")
        print(f"{set_name:52} {len(texts):5} {lang:>5} | " + " | ".join(f"{c:>22}" for c in cells), flush=True)
    for lang in languages:
        cells = [f"{t[lang + ':flagged'] / t[lang + ':n']:.2%}" for t in totals.values()]
        print(f"{'all benign ' + lang:52} {totals[names[0]][lang + ':n']:5} {lang:>5} | "
              + " | ".join(f"{c:>22}" for c in cells))


def hatecheck_detail(scorers: dict[str, HapScorer], threshold: float) -> None:
    cases = data.hatecheck()
    print("\nHateCheck, share flagged per functionality (_h: should be flagged, _nh: should not)")
    scored = {name: np.asarray(s.score([c.text for c in cases])) >= threshold for name, s in scorers.items()}
    for func in sorted({c.kind for c in cases}):
        idx = [i for i, c in enumerate(cases) if c.kind == func]
        print(f"  {func:22} {len(idx):4} " + "  ".join(f"{n} {scored[n][idx].mean():.2f}" for n in scorers))


def timed(fn: Callable[[list[str]], object], texts: list[str], batch: int = 256) -> tuple[float, float]:
    """Wall and CPU seconds to score ``texts`` in batches."""
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(texts), batch):
        fn(texts[i:i + batch])
    return time.perf_counter() - wall, time.process_time() - cpu


def speed(ours: OfflineScorer, lexical: LexicalScorer, n_texts: int) -> None:
    """Texts/s on unseen, real-shaped text: ours vs every sentence through batched MiniLM + our English head
    (issue 15's fair baseline; cheaper than e5 on the Chinese sentences, so the ratio is on the safe side)."""
    rng = random.Random(1)
    pools = [data.english_benign("sharegpt_human_test"), data.english_benign("sharegpt_gpt_test"),
             data.chinese_benign("kdconv_test"), [e.text for e in data.hatexplain("test")]]
    texts = [t for pool in pools for t in rng.sample(pool, n_texts // len(pools))]
    rng.shuffle(texts)
    n_sentences = sum(len(sentences(t)) for t in texts)
    english = ours.english
    assert english.head is not None

    def minilm_everything(batch: list[str]) -> None:
        sents = [model_text(s) for t in batch for s in sentences(t)]
        sigmoid(english.head.logits(english.encoder.encode(sents)))

    english.encoder.encode(["warm up"])
    ours.chinese.encoder.encode(["预热"])
    before = english.encoded_sentences, ours.chinese.encoded_sentences
    ours_wall, ours_cpu = timed(ours.score, texts)
    base_wall, base_cpu = timed(minilm_everything, texts)
    lex_wall, lex_cpu = timed(lexical.score, texts)
    print(f"\nspeed on {len(texts)} unseen real-shaped texts ({n_sentences} sentences); through an encoder in ours: "
          f"{english.encoded_sentences - before[0]} English (MiniLM), {ours.chinese.encoded_sentences - before[1]} "
          "Chinese (e5)")
    for name, wall, cpu in (("ours (offline)", ours_wall, ours_cpu), ("batched MiniLM + head, every sentence",
                                                                       base_wall, base_cpu),
                            ("alt-profanity-check", lex_wall, lex_cpu)):
        print(f"  {name:40} {len(texts) / wall:8.1f} texts/s  ({len(texts) / cpu:8.1f} per CPU-second)")
    print(f"  ours vs batched MiniLM: {base_wall / ours_wall:.1f}x wall, {base_cpu / ours_cpu:.1f}x CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (HapSettings.threads)")
    parser.add_argument("--speed-texts", type=int, default=600)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--only", choices=["en", "zh"], default=None,
                        help="quality on one language's sets (full-width and mixed sets skipped)")
    parser.add_argument("--previous", type=Path, default=None,
                        help="a folder of earlier HAP models to score with as well (a before/after column)")
    args = parser.parse_args()
    threshold = HapSettings().threshold
    try:
        data.olid("test")
    except FileNotFoundError as exc:
        raise SystemExit(f"hap_bench needs the public data sets: {exc}") from None
    ours = OfflineScorer(threads=args.threads)
    lexical = LexicalScorer()
    scorers: dict[str, HapScorer] = {"ours": ours, "lexical": lexical}
    if args.previous:
        scorers["previous"] = OfflineScorer(model_dir=args.previous, threads=args.threads)
    print(f"HAP benchmark, threshold {threshold}; data under {data.data_root()}")
    if not args.skip_quality:
        quality(scorers, threshold, [args.only] if args.only else ["en", "zh"])
        hatecheck_detail(scorers, threshold)
    speed(ours, lexical, args.speed_texts)


if __name__ == "__main__":
    main()

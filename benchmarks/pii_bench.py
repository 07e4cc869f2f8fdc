"""PII benchmark: leakage, per-entity recall/precision and throughput, ours vs plain Presidio, same run.

Data: ``curation.safety_data.pii_examples`` on the ``heldout`` templates (written apart from the
``dev`` templates the recognizers were developed on), values from Faker in nine locales.

A labelled value *leaks* when any of its words or digit groups (2+ characters) is left uncovered by
the detected spans. Precision counts a detected span as right when it overlaps any labelled value.
Plain Presidio = ``AnalyzerEngine`` with spaCy ``en_core_web_sm`` (full pipeline) and its default
recognizers, then ``AnonymizerEngine`` — one document at a time, as its quick-start does.

Precision on text without personal data: ``curation.safety_data.benign_support_texts`` (support and
product text: plans, prices, quantities with units, app names, capitalised menu words) from the same
split; the false-positive rate is the share of those texts that come out changed.

    .venv/bin/python benchmarks/pii_bench.py [--n 1000] [--benign 1000] [--split heldout]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import regex

from curation.pii import ENTITIES, PiiDetector, Scrub, offline_tldextract, propagate, spacy_engine
from curation.safety_data import LabelledText, benign_support_texts, pii_examples
from flywheel.settings import ScrubSettings

TOKEN = regex.compile(r"[\p{L}\p{N}]{2,}")


def plain_presidio():
    from presidio_analyzer import AnalyzerEngine
    from presidio_anonymizer import AnonymizerEngine

    offline_tldextract()
    return AnalyzerEngine(nlp_engine=spacy_engine(ner_only=False), supported_languages=["en"]), AnonymizerEngine()


def score(examples: list[LabelledText], predicted: list[list[tuple[str, int, int]]]) -> dict:
    leaked, total, tp_pred, n_pred = Counter(), Counter(), Counter(), Counter()
    for ex, preds in zip(examples, predicted, strict=True):
        covered = set()
        for _, s, e in preds:
            covered.update(range(s, e))
        for span in ex.spans:
            total[span.label] += 1
            for m in TOKEN.finditer(ex.text, span.start, span.end):
                if not covered.issuperset(range(m.start(), m.end())):
                    leaked[span.label] += 1
                    break
        for label, s, e in preds:
            n_pred[label] += 1
            tp_pred[label] += any(s < g.end and g.start < e for g in ex.spans)
    return {"leaked": leaked, "total": total, "tp_pred": tp_pred, "n_pred": n_pred}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="labelled texts")
    parser.add_argument("--split", default="heldout", choices=["dev", "heldout"])
    parser.add_argument("--benign", type=int, default=1000, help="texts without personal data")
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    examples = pii_examples(args.n, args.split, seed=7)
    texts = [ex.text for ex in examples]

    analyzer, anonymizer = plain_presidio()
    settings = ScrubSettings(processes=args.processes)
    scrub = Scrub(settings, fields=["text"])
    analyzer.analyze(texts[0], language="en")  # warm-up outside the clock, for both sides
    list(scrub([{"text": texts[0]}]))
    # Alternate blocks of the two so that load from other work on the machine hits both alike.
    plain, scrubbed, plain_s, ours_s, plain_cpu, ours_cpu = [], [], 0.0, 0.0, 0.0, 0.0
    for i in range(0, len(texts), 128):
        block = texts[i:i + 128]
        t0, c0 = time.perf_counter(), time.process_time()
        for text in block:
            results = analyzer.analyze(text, language="en")
            anonymizer.anonymize(text, results)
            plain.append([(r.entity_type, r.start, r.end) for r in results])
        t1, c1 = time.perf_counter(), time.process_time()
        scrubbed += list(scrub({"text": t} for t in block))
        ours_s, ours_cpu = ours_s + time.perf_counter() - t1, ours_cpu + time.process_time() - c1
        plain_s, plain_cpu = plain_s + t1 - t0, plain_cpu + c1 - c0
    plain_rate, ours_rate = len(texts) / plain_s, len(texts) / ours_s
    assert len(scrubbed) == len(texts)
    detector: PiiDetector = scrub.detector
    ours = [[(f.entity, f.start, f.end) for f in propagate([t], [found])[0]]
            for t, found in zip(texts, detector.detect(texts), strict=True)]

    base, mine = score(examples, plain), score(examples, ours)
    print(f"PII benchmark: {len(texts)} texts, split={args.split}, values={sum(mine['total'].values())}")
    print(f"{'entity':16} {'n':>5} | {'plain leak':>10} {'recall':>7} | {'ours leak':>9} {'recall':>7}")
    for label in ENTITIES:
        n = mine["total"][label]
        if not n:
            continue
        bl, ol = base["leaked"][label] / n, mine["leaked"][label] / n
        print(f"{label:16} {n:5d} | {bl:10.1%} {1 - bl:7.3f} | {ol:9.1%} {1 - ol:7.3f}")
    n_all = sum(mine["total"].values())
    b_all, o_all = sum(base["leaked"].values()) / n_all, sum(mine["leaked"].values()) / n_all
    print(f"{'ALL':16} {n_all:5d} | {b_all:10.1%} {1 - b_all:7.3f} | {o_all:9.1%} {1 - o_all:7.3f}")
    print(f"\n{'predicted type':16} | {'plain n':>7} {'precision':>9} | {'ours n':>6} {'precision':>9}")
    for label in sorted(set(base["n_pred"]) | set(mine["n_pred"])):
        bn, on = base["n_pred"][label], mine["n_pred"][label]
        bp = f"{base['tp_pred'][label] / bn:.3f}" if bn else "-"
        op = f"{mine['tp_pred'][label] / on:.3f}" if on else "-"
        print(f"{label:16} | {bn:7d} {bp:>9} | {on:6d} {op:>9}")
    bp_all = sum(base["tp_pred"].values()) / max(1, sum(base["n_pred"].values()))
    op_all = sum(mine["tp_pred"].values()) / max(1, sum(mine["n_pred"].values()))
    print(f"{'ALL':16} | {sum(base['n_pred'].values()):7d} {bp_all:9.3f} | {sum(mine['n_pred'].values()):6d} {op_all:9.3f}")
    print(f"\nthroughput (analyze + replace): plain Presidio {plain_rate:.0f} docs/s, ours {ours_rate:.0f} docs/s "
          f"(processes={args.processes}) -> {ours_rate / plain_rate:.2f}x")
    print(f"per CPU-second: plain Presidio {len(texts) / plain_cpu:.0f} docs, ours {len(texts) / ours_cpu:.0f} docs "
          f"-> {plain_cpu / ours_cpu:.2f}x")
    print(f"leaked overall: plain {b_all:.1%}, ours {o_all:.1%} (bar <= 8%)")

    benign = benign_support_texts(args.benign, args.split, seed=7)
    ours_changed = [r["text"] != t for r, t in zip(scrub({"text": t} for t in benign), benign, strict=True)]
    plain_changed, plain_ours_types = [], []
    for text in benign:
        results = analyzer.analyze(text, language="en")
        plain_changed.append(anonymizer.anonymize(text, results).text != text)
        plain_ours_types.append(any(r.entity_type in ENTITIES for r in results))
    print(f"\nbenign support texts altered ({len(benign)} texts, split={args.split}): "
          f"plain Presidio {sum(plain_changed) / len(benign):.1%} (on our {len(ENTITIES)} entity types alone: "
          f"{sum(plain_ours_types) / len(benign):.1%}), ours {sum(ours_changed) / len(benign):.1%}")


if __name__ == "__main__":
    main()

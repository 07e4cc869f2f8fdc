"""HAP benchmark: implicit-hate and explicit-abuse precision/recall, and throughput, vs alt-profanity-check.

Data: ``curation.safety_data.hap_examples("heldout")`` — templates and target groups never used to
train the semantic heads (those use the ``train`` split). Implicit hate is scored against benign
text (support chat, neutral statements about the same groups, frustration without abuse); explicit
abuse likewise. Throughput: every unique text of both splits, scored in batches of 256 on
``--threads`` torch threads, beside a plain one-at-a-time PyTorch forward pass of the same MiniLM.

    .venv/bin/python benchmarks/hap_bench.py [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from curation.hap import LexicalScorer, OfflineScorer
from curation.safety_data import hap_examples
from flywheel.settings import HapSettings


def prf(scores: list[float], kinds: list[str], positive: str, threshold: float) -> tuple[float, float, float]:
    pairs = [(s >= threshold, k == positive) for s, k in zip(scores, kinds, strict=True) if k in (positive, "benign")]
    tp = sum(p and y for p, y in pairs)
    fp = sum(p and not y for p, y in pairs)
    fn = sum(y and not p for p, y in pairs)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return precision, recall, 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def rate(fn, texts: list[str], batch: int = 256) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(texts), batch):
        fn(texts[i:i + batch])
    return len(texts) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (HapSettings.threads)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="where the semantic heads are cached")
    args = parser.parse_args()
    import torch
    threshold = HapSettings().threshold
    rows = hap_examples("heldout")
    texts, kinds = [t for t, _ in rows], [k for _, k in rows]
    cache = args.cache_dir or Path(tempfile.mkdtemp(prefix="hap-bench-"))
    t0 = time.perf_counter()
    ours = OfflineScorer(cache, args.threads)
    setup = time.perf_counter() - t0
    lexical = LexicalScorer()
    results = {"alt-profanity-check": lexical.score(texts), "ours (offline)": ours.score(texts)}

    print(f"HAP benchmark (heldout): {kinds.count('implicit')} implicit, {kinds.count('explicit')} explicit, "
          f"{kinds.count('benign')} benign; threshold {threshold}")
    print(f"{'scorer':22} | {'implicit P':>10} {'R':>6} {'F1':>6} | {'explicit P':>10} {'R':>6} {'F1':>6}")
    for name, scores in results.items():
        ip, ir, i_f = prf(scores, kinds, "implicit", threshold)
        ep, er, e_f = prf(scores, kinds, "explicit", threshold)
        print(f"{name:22} | {ip:10.3f} {ir:6.3f} {i_f:6.3f} | {ep:10.3f} {er:6.3f} {e_f:6.3f}")

    corpus = sorted({t for t, _ in hap_examples("train")} | set(texts))
    encoder = ours.semantic.encoder

    def plain_forward(batch: list[str]) -> None:
        with torch.inference_mode():
            for text in batch:
                encoder.model(**encoder.tokenizer(text, return_tensors="pt"))

    fresh = OfflineScorer(cache, args.threads)  # no sentence seen yet by this instance
    # Alternate blocks of ours and the plain forward pass so that load from other work hits both alike.
    ours_s = plain_s = ours_cpu = plain_cpu = 0.0
    for i in range(0, len(corpus), 128):
        t0, c0 = time.perf_counter(), time.process_time()
        fresh.score(corpus[i:i + 128])
        t1, c1 = time.perf_counter(), time.process_time()
        plain_forward(corpus[i:i + 16])
        ours_s, ours_cpu = ours_s + t1 - t0, ours_cpu + c1 - c0
        plain_s, plain_cpu = plain_s + time.perf_counter() - t1, plain_cpu + time.process_time() - c1
    n_plain = sum(len(corpus[i:i + 16]) for i in range(0, len(corpus), 128))
    ours_rate, plain_rate = len(corpus) / ours_s, n_plain / plain_s
    routed = fresh.semantic.transformer_sentences
    lexical_rate = rate(lexical.score, corpus)
    print(f"\nthroughput on {len(corpus)} short texts, {args.threads} threads: ours {ours_rate:.0f} texts/s "
          f"({routed} sentences went through the transformer), plain MiniLM forward {plain_rate:.0f} texts/s "
          f"-> {ours_rate / plain_rate:.2f}x; alt-profanity-check alone {lexical_rate:.0f} texts/s")
    print(f"per CPU-second (what {args.threads} dedicated cores would give, before thread overheads): "
          f"ours {len(corpus) / ours_cpu * args.threads:.0f} texts/s, plain forward {n_plain / plain_cpu * args.threads:.0f} texts/s")
    print(f"first-use setup (load model, train or load cached heads): {setup:.1f}s")


if __name__ == "__main__":
    main()

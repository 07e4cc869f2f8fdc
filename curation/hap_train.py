"""Rebuild the shipped HAP models (``curation/models/*.npz``) from public data, deterministically.

    FLYWHEEL_PUBLIC_DATA=/work/data .venv/bin/python -m curation.hap_train [--out curation/models]

Which sets and splits go where is fixed in ``curation.hap_data`` (train / tune / measure-only). Steps:

1. English n-gram model: OLID train part, implicit-hate train part, HateXplain validation (harmful = offensive
   or hate), and sentences of ordinary English prompts and answers as negatives (ShareGPT train half,
   OpenAssistant prompts, Arena-Hard train half). Regularisation picked on the tune parts (OLID dev,
   implicit-hate dev).
2. English semantic head: a fixed sample of the same texts through MiniLM, logistic regression on the vectors;
   the stack that combines both logits for sentences above the n-gram gate, fitted on the tune parts.
3. Chinese n-gram model: COLD train and the multi-character entries of a public-domain Chinese profanity
   list (COLD has few insults between users) as positives, ordinary Chinese dialogue turns and questions, and
   Wikipedia sentences drawn apart from them, as negatives; regularisation picked on COLD dev's tune half.
4. Chinese semantic head and stack: as 2, with multilingual-e5-small on a smaller fixed sample.

Every model file records its data, parameters and tune-set figures (``hap_models.model_meta``).
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from curation import hap_data as data
from curation.hap_models import (
    ENCODERS,
    MODEL_DIR,
    NgramModel,
    NgramSpec,
    Stack,
    VectorHead,
    model_text,
    save_ngram,
    save_semantic,
    sigmoid,
)
from curation.text import sentences

ENGLISH_SPEC = NgramSpec(word=(1, 2), char=(2, 5), char_analyzer="char_wb")
CHINESE_SPEC = NgramSpec(word=None, char=(1, 3), char_analyzer="char")
ENGLISH_BENIGN_SENTENCES = 30_000   # ordinary sentences drawn as negatives (of ~45k)
SEMANTIC_LABELLED = 12_000          # the MiniLM head sees a sample: encoding is the slow part
SEMANTIC_BENIGN_SENTENCES = 4_000
CHINESE_BENIGN_TEXTS = 38_000       # of ~73k distinct
CHINESE_WIKI_TEXTS = 8_000          # Wikipedia sentences and questions (of ~23k), on top of them
SEMANTIC_ZH_LABELLED = 3_000        # e5 is slower still than MiniLM: a smaller sample for the Chinese head
SEMANTIC_ZH_BENIGN = 1_500
SEMANTIC_ZH_TUNE = 800
ENGLISH_GATE = 0.15                 # n-gram probability that sends an English sentence through MiniLM
CHINESE_GATE = 0.08                 # lower: insults COLD lacks score low on n-grams (see RESULTS.md)
SEED = 0


def f1_at(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> tuple[float, float, float]:
    flagged = scores >= threshold
    tp = int((flagged & (labels == 1)).sum())
    precision = tp / max(int(flagged.sum()), 1)
    recall = tp / max(int((labels == 1).sum()), 1)
    return precision, recall, 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _sample(items: list[str], n: int) -> list[str]:
    items = sorted(set(items))
    random.Random(SEED).shuffle(items)
    return items[:n]


def benign_sentences(names: Sequence[str], n: int) -> list[str]:
    """``n`` distinct sentences (longer than 3 characters) of the named ordinary-English sets."""
    found = [s for name in names for text in data.english_benign(name) for s in sentences(text) if len(s) > 3]
    return _sample(found, n)


def english_labelled() -> list[data.Example]:
    return data.olid("train") + data.implicit_hate("train") + data.hatexplain("val")


def english_tune() -> list[data.Example]:
    return data.olid("dev") + data.implicit_hate("dev")


def fit_ngram(spec: NgramSpec, texts: Sequence[str], labels: Sequence[int], c: float) -> NgramModel:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, max_iter=5000, solver="liblinear", random_state=SEED)
    clf.fit(spec.vectorise([model_text(t) for t in texts]), np.asarray(labels))
    return NgramModel(spec, clf.coef_[0].astype(np.float16).astype(np.float32), float(clf.intercept_[0]))


def pick_ngram(spec: NgramSpec, texts: list[str], labels: list[int], tune: list[data.Example],
               grid: Sequence[float]) -> tuple[NgramModel, dict]:
    """The regularisation with the best F1 at 0.5 on the tune set."""
    best = None
    tune_labels = np.array([e.label for e in tune])
    for c in grid:
        model = fit_ngram(spec, texts, labels, c)
        p, r, f = f1_at(sigmoid(model.logits([e.text for e in tune])), tune_labels)
        print(f"  C={c}: tune P {p:.3f} R {r:.3f} F1 {f:.3f}", flush=True)
        if best is None or f > best[1]["tune_f1"]:
            best = (model, {"C": c, "tune_precision": round(p, 4), "tune_recall": round(r, 4), "tune_f1": round(f, 4)})
    assert best is not None
    return best


def fit_head(vectors: np.ndarray, labels: np.ndarray, c: float = 1.0) -> VectorHead:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, max_iter=5000, class_weight="balanced").fit(vectors, labels)
    return VectorHead(clf.coef_[0].astype(np.float32), float(clf.intercept_[0]))


def fit_stack(ngram_logits: np.ndarray, vector_logits: np.ndarray, labels: np.ndarray, gate: float,
              encoder: str) -> Stack:
    """Logistic regression on the two logits of the tune sentences that pass the gate."""
    from sklearn.linear_model import LogisticRegression

    passed = sigmoid(ngram_logits) >= gate
    x = np.stack([ngram_logits[passed], vector_logits[passed]], axis=1)
    clf = LogisticRegression(C=1.0, max_iter=1000).fit(x, labels[passed])
    return Stack(float(clf.coef_[0][0]), float(clf.coef_[0][1]), float(clf.intercept_[0]), gate, encoder)


def train_semantic(out: Path, language: str, ngram: NgramModel, encoder_name: str, gate: float, threads: int,
                   labelled: list[data.Example], benign: list[str], tune: list[data.Example],
                   meta: dict) -> None:
    """The encoder head on a fixed sample (encoding is the slow part), then the stack on the tune texts."""
    encoder = ENCODERS[encoder_name](threads)
    head_texts = [e.text for e in labelled] + benign
    head_labels = np.array([e.label for e in labelled] + [0] * len(benign))
    print(f"{language} semantic head: encoding {len(head_texts)} texts with {encoder_name}", flush=True)
    head = fit_head(encoder.encode([model_text(t) for t in head_texts]), head_labels)
    tune_texts = [e.text for e in tune]
    tune_labels = np.array([e.label for e in tune])
    ngram_logits = ngram.logits(tune_texts)
    vector_logits = head.logits(encoder.encode([model_text(t) for t in tune_texts]))
    stack = fit_stack(ngram_logits, vector_logits, tune_labels, gate, encoder_name)
    passed = sigmoid(ngram_logits) >= gate
    combined = np.where(passed, sigmoid(stack.logits(ngram_logits, vector_logits)), sigmoid(ngram_logits))
    p, r, f = f1_at(combined, tune_labels)
    print(f"  stacked on tune: P {p:.3f} R {r:.3f} F1 {f:.3f}; the gate passes {passed.mean():.1%} of them",
          flush=True)
    save_semantic(out / f"hap_{language}_semantic.npz", head, stack,
                  {**meta, "n_head_texts": len(head_texts), "n_tune_texts": len(tune), "gate": gate,
                   "tune_precision": round(p, 4), "tune_recall": round(r, 4), "tune_f1": round(f, 4)})


def _shuffled(items: list, n: int) -> list:
    items = sorted(items, key=lambda e: e.text)
    random.Random(SEED).shuffle(items)
    return items[:n]


def train_english(out: Path, semantic: bool, gate: float, threads: int) -> None:
    labelled = english_labelled()
    benign = benign_sentences(data.ENGLISH_BENIGN_TRAIN, ENGLISH_BENIGN_SENTENCES)
    texts = [e.text for e in labelled] + benign
    labels = [e.label for e in labelled] + [0] * len(benign)
    tune = english_tune()
    print(f"English n-gram model: {len(labelled)} labelled + {len(benign)} ordinary sentences", flush=True)
    model, chosen = pick_ngram(ENGLISH_SPEC, texts, labels, tune, grid=(1.0, 4.0, 16.0))
    sets = {"train": ["olid:train part", "implicit_hate:train part", "hatexplain:val",
                      *(f"{n} (sentences)" for n in data.ENGLISH_BENIGN_TRAIN)],
            "tune": ["olid:dev part", "implicit_hate:dev part"]}
    save_ngram(out / "hap_en_ngram.npz", model, {**sets, **chosen, "n_labelled": len(labelled),
                                                  "n_benign": len(benign)})
    if semantic:
        train_semantic(out, "en", model, "minilm", gate, threads, _shuffled(labelled, SEMANTIC_LABELLED),
                       benign[:SEMANTIC_BENIGN_SENTENCES], tune, sets)


def train_chinese(out: Path, semantic: bool, gate: float, threads: int) -> None:
    labelled = data.cold("train")
    profanity = [data.Example(w, 1, "profanity_list") for w in data.chinese_profanity_list()]
    pool = _sample([t for n in data.CHINESE_BENIGN_TRAIN for t in data.chinese_benign(n)], CHINESE_BENIGN_TEXTS)
    factual = _sample([t for n in data.CHINESE_FACTUAL_TRAIN for t in data.chinese_benign(n)], CHINESE_WIKI_TEXTS)
    benign = pool + factual
    texts = [e.text for e in labelled + profanity] + benign
    labels = [e.label for e in labelled + profanity] + [0] * len(benign)
    print(f"Chinese n-gram model: {len(labelled)} COLD train + {len(profanity)} profanity-list entries + "
          f"{len(benign)} ordinary texts", flush=True)
    tune = data.cold("tune")
    model, chosen = pick_ngram(CHINESE_SPEC, texts, labels, tune, grid=(0.5, 2.0, 8.0))
    sets = {"train": ["cold:train", "profanity_list:zh (multi-character entries)", *data.CHINESE_BENIGN_TRAIN,
                      *data.CHINESE_FACTUAL_TRAIN], "tune": ["cold:dev tune half"]}
    save_ngram(out / "hap_zh_ngram.npz", model, {**sets, **chosen, "n_labelled": len(labelled) + len(profanity),
                                                  "n_benign": len(benign)})
    if semantic:
        train_semantic(out, "zh", model, "e5", gate, threads,
                       _shuffled(labelled, SEMANTIC_ZH_LABELLED) + profanity,
                       pool[:SEMANTIC_ZH_BENIGN] + factual[:SEMANTIC_ZH_BENIGN * len(factual) // len(pool)],
                       _shuffled(tune, SEMANTIC_ZH_TUNE), sets)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    parser.add_argument("--only", choices=["en", "zh"], default=None)
    parser.add_argument("--no-semantic", action="store_true", help="n-gram models only (minutes, not an hour)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "en"):
        train_english(args.out, not args.no_semantic, ENGLISH_GATE, args.threads)
    if args.only in (None, "zh"):
        train_chinese(args.out, not args.no_semantic, CHINESE_GATE, args.threads)


if __name__ == "__main__":
    main()

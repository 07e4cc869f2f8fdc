"""Rebuild the shipped PII models from public training data (``/work/data``, see benchmarks/RESULTS.md):

- ``curation/en_names.npz``: the English name tagger (:class:`curation.pii_tagger.EnglishNameTagger`), fit on
  CoNLL-2003 train, WNUT-17 train and 3/4 of the even sha1 half of the English PII benchmark, with the even
  half of ShareGPT user turns as ordinary text; its thresholds are chosen on CoNLL dev (testa), WNUT-17 dev and
  the held-back quarters (``train_english``); then it is refit on all of these.

Only development splits are read (the ``dev`` column of ``pii_bench.py``); nothing here reads a test split.
scikit-learn is needed here, never on the scrub path.

    PYTHONPATH=. .venv/bin/python benchmarks/pii_train.py english [--data /work/data]
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import pii_bench as bench  # noqa: E402

from curation.pii_tagger import EN_NAME_MODEL, EnglishNameTagger, LinearModel  # noqa: E402


def fit_linear(rows: Sequence[Sequence[str]], labels: Sequence[int], classes: list[str], c: float = 0.5,
               weights: Sequence[float] | None = None, min_count: int = 2, prune: float = 0.02) -> LinearModel:
    """Logistic regression (L2, ``c`` = inverse strength) on binary features seen at least ``min_count`` times;
    weights below ``prune`` in every class are dropped (they change no decision and would bloat the file).
    Two classes give a binary model (one column: the second class's log-odds)."""
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    counts = Counter(f for row in rows for f in set(row))
    vocab = sorted(f for f, n in counts.items() if n >= min_count or f == "bias")
    index = {f: i for i, f in enumerate(vocab)}
    indptr, indices = [0], []
    for row in rows:
        indices.extend(sorted({index[f] for f in row if f in index}))
        indptr.append(len(indices))
    x = csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(len(rows), len(vocab)))
    model = LogisticRegression(C=c, max_iter=3000, solver="lbfgs" if len(classes) > 2 else "liblinear")
    model.fit(x, np.asarray(labels), sample_weight=None if weights is None else np.asarray(weights))
    coef = model.coef_.T.astype(np.float32).copy()  # (n_features, 1) binary, (n_features, n_classes) multinomial
    bias = index["bias"]
    coef[bias] += model.intercept_.astype(np.float32)
    keep = np.abs(coef).max(axis=1) >= prune
    keep[bias] = True
    return LinearModel([f for f, k in zip(vocab, keep, strict=True) if k], coef[keep], classes)


def _quarter(text: str) -> bool:
    return hashlib.sha1(text.encode()).digest()[1] % 4 == 0


def english_sets(data: Path) -> dict[str, tuple[list[bench.Labelled], list[bench.Labelled], float]]:
    """name -> (fit texts, tune texts, sample weight). PERSON spans only."""
    def persons(items):
        return [bench.Labelled(it.text, [s for s in it.spans if s[2] == "PERSON"]) for it in items]

    conll = [bench._ner_sentences([data / "conll2003" / f"{n}.jsonl"], {"PER": "PERSON"}) for n in ("train", "dev")]
    wnut = [bench._ner_sentences([data / "wnut17" / f"{n}.jsonl"], {"person": "PERSON"}) for n in ("train", "dev")]
    pii = persons(bench.en_pii_benchmark(data, "dev"))
    ordinary = bench.en_ordinary(data, "dev")
    return {
        "conll": (conll[0], conll[1], 1.0),
        "wnut": (wnut[0], wnut[1], 2.0),
        "pii": ([t for t in pii if not _quarter(t.text)], [t for t in pii if _quarter(t.text)], 6.0),
        "ordinary": ([t for t in ordinary if not _quarter(t.text)], [t for t in ordinary if _quarter(t.text)], 1.0),
    }


def english_rows(detector, items: list[bench.Labelled], cache: Path | None = None):
    """(rows, labels, per-text (tokens, candidate indices, row range)) for the tagger's candidates."""
    if cache and cache.exists():
        evidence = pickle.loads(cache.read_bytes())
    else:
        evidence = []
        for i in range(0, len(items), 256):
            evidence += detector.evidence([it.text for it in items[i:i + 256]])
        if cache:
            cache.write_bytes(pickle.dumps(evidence))
    tagger = detector.name_tagger
    rows, labels, per_text = [], [], []
    for item, ev in zip(items, evidence, strict=True):
        toks, cand, text_rows = tagger.rows(item.text, ev)
        start = len(rows)
        rows += text_rows
        labels += [int(any(s < toks[i].end and toks[i].start < e for s, e, _ in item.spans)) for i in cand]
        per_text.append((ev, start, len(rows)))
    return rows, labels, per_text


def leak_report(tagger: EnglishNameTagger, items: list[bench.Labelled], evidence_rows) -> tuple[float, float, int]:
    """(share of labelled names leaked, share of other characters replaced, names) with the tagger alone."""
    score = bench.Score()
    for item, (ev, _s, _e) in zip(items, evidence_rows, strict=True):
        score.add(item, [(s, e) for s, e, _p in tagger.spans(item.text, ev)])
    total = sum(score.total.values())
    return sum(score.leaked.values()) / max(1, total), 1 - score.kept, total


ORDINARY_REPLACED_MAX = 0.012  # of ordinary text's characters the name tagger alone may replace (tune quarter)
THRESHOLDS = [(t, j) for t in (0.3, 0.35, 0.4, 0.45, 0.5) for j in (0.1, 0.2, t)]


def train_english(data: Path, out: Path, cache_dir: Path | None, c: float = 0.5) -> LinearModel:
    """Fit on the fit parts, choose (threshold, join threshold) on the tune parts — the lowest mean share of
    names leaked over CoNLL dev, WNUT-17 dev and the held-back PII quarter, with at most
    ``ORDINARY_REPLACED_MAX`` of the ordinary text replaced — then refit on fit + tune and save."""
    from curation.pii import PiiDetector
    from flywheel.settings import ScrubSettings

    detector = PiiDetector(ScrubSettings())
    sets = english_sets(data)
    prepared = {}
    for name, (fit, tune, _weight) in sets.items():
        started = time.perf_counter()
        prepared[name] = [english_rows(detector, part, cache_dir / f"en_{name}_{kind}.pkl" if cache_dir else None)
                          for kind, part in (("fit", fit), ("tune", tune))]
        print(f"{name}: {len(fit)} fit + {len(tune)} tune texts ({time.perf_counter() - started:.0f}s)", flush=True)

    def fit_on(kinds: tuple[int, ...]) -> LinearModel:
        rows, labels, weights = [], [], []
        for name in sets:
            for kind in kinds:
                r, y, _ = prepared[name][kind]
                rows += r
                labels += y
                weights += [sets[name][2]] * len(r)
        return fit_linear(rows, labels, ["other", "PERSON"], c=c, weights=weights)

    model = fit_on((0,))
    best = None
    for threshold, join in THRESHOLDS:
        model.meta.update(threshold=threshold, join_threshold=join)
        tagger = EnglishNameTagger(detector.lexicon, model)
        report = {name: leak_report(tagger, sets[name][1], prepared[name][1][2]) for name in sets}
        leaked = float(np.mean([report[n][0] for n in ("conll", "wnut", "pii")]))
        ok = report["ordinary"][1] <= ORDINARY_REPLACED_MAX
        print(f"threshold {threshold:.2f} join {join:.2f}: " + " | ".join(
            f"{n} leaked {r[0]:5.1%} replaced {r[1]:5.2%}" for n, r in report.items()) + ("" if ok else "  (too much)"))
        if ok and (best is None or leaked < best[0]):
            best = (leaked, threshold, join)
    if best is None:
        raise SystemExit("no threshold keeps ordinary text intact enough")
    model = fit_on((0, 1))
    model.meta.update(threshold=best[1], join_threshold=best[2], c=c, trained_on=(
        "CoNLL-2003 train + dev (testa) PER; WNUT-17 train + dev person; English PII benchmark (AmbientMeta) even "
        "sha1(id) half PERSON; ShareGPT user turns with even sha1 as ordinary text"))
    model.save(out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {len(model.features)} features), threshold {best[1]}, "
          f"join {best[2]}")
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=["english"])
    parser.add_argument("--data", type=Path, default=bench.DATA)
    parser.add_argument("--cache", type=Path, default=None, help="keep spaCy's evidence here between runs")
    parser.add_argument("--c", type=float, default=0.5)
    args = parser.parse_args()
    if args.cache:
        args.cache.mkdir(parents=True, exist_ok=True)
    train_english(args.data, EN_NAME_MODEL, args.cache, args.c)


if __name__ == "__main__":
    main()

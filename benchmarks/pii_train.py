"""Rebuild the shipped PII models from public training data (``/work/data``, see benchmarks/RESULTS.md):

- ``english``: ``curation/en_names.npz``, the English name tagger (:class:`curation.pii_tagger.EnglishNameTagger`),
  fit on CoNLL-2003 train, WNUT-17 train and 3/4 of the even sha1 half of the English PII benchmark, with the even
  half of ShareGPT user turns as ordinary text; its thresholds are chosen on CoNLL dev (testa), WNUT-17 dev and
  the held-back quarters (``train_english``); then it is refit on all of these.
- ``chinese``: ``curation/zh_names.npz``, the Chinese name-candidate model, and ``curation/zh_tagger.npz``, the
  character tagger for names and addresses (:class:`curation.pii_zh.ChineseTagger`), fit on CLUENER2020 train,
  Weibo NER train + dev, MSRA val, People's Daily dev, their names put into train-split chat and support
  sentences, CrossWOZ val and ordinary Chinese text (``train_chinese``).

Only development splits are read (the ``dev`` column of ``pii_bench.py``); nothing here reads a test split.
scikit-learn is needed here, never on the scrub path.

    PYTHONPATH=. .venv/bin/python benchmarks/pii_train.py english|chinese [--data /work/data] [--cache DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import sys
import time
from array import array
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import regex

sys.path.insert(0, str(Path(__file__).parent))
import pii_bench as bench  # noqa: E402

from curation.pii_tagger import EN_NAME_MODEL, EnglishNameTagger, LinearModel  # noqa: E402


def fit_linear(rows: Iterable[Sequence[str]], labels: Sequence[int], classes: list[str], c: float = 0.5,
               weights: Sequence[float] | None = None, min_count: int = 2, prune: float = 0.02) -> LinearModel:
    """Logistic regression (L2, ``c`` = inverse strength) on binary features seen in at least ``min_count`` rows;
    weights below ``prune`` in every class are dropped (they change no decision and would bloat the file).
    Two classes give a binary model (one column: the second class's log-odds). ``rows`` may be a generator:
    features become integer ids as they stream in."""
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    index: dict[str, int] = {"bias": 0}
    indices, indptr = array("l"), array("l", [0])
    for row in rows:
        indices.extend(sorted({index.setdefault(f, len(index)) for f in row}))
        indptr.append(len(indices))
    ids = np.frombuffer(indices, dtype=np.int64)
    frequent = np.bincount(ids, minlength=len(index)) >= min_count
    frequent[0] = True
    new_id = np.cumsum(frequent) - 1
    kept = frequent[ids]
    row_ends = np.concatenate([[0], np.cumsum(kept)])[np.frombuffer(indptr, dtype=np.int64)]
    x = csr_matrix((np.ones(int(kept.sum()), dtype=np.float32), new_id[ids[kept]], row_ends),
                   shape=(len(indptr) - 1, int(frequent.sum())))
    names = np.empty(len(index), dtype=object)
    for f, i in index.items():
        names[i] = f
    vocab = list(names[frequent])
    model = LogisticRegression(C=c, max_iter=3000, solver="lbfgs" if len(classes) > 2 else "liblinear")
    model.fit(x, np.asarray(labels), sample_weight=None if weights is None else np.asarray(weights))
    coef = model.coef_.T.astype(np.float32).copy()  # (n_features, 1) binary, (n_features, n_classes) multinomial
    coef[0] += model.intercept_.astype(np.float32)  # "bias" is feature 0, in every row
    keep = np.abs(coef).max(axis=1) >= prune
    keep[0] = True
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


def _eighth(text: str) -> bool:
    return hashlib.sha1(text.encode()).digest()[2] % 8 == 0


def _split(items: list[bench.Labelled]) -> tuple[list[bench.Labelled], list[bench.Labelled]]:
    return [t for t in items if not _eighth(t.text)], [t for t in items if _eighth(t.text)]


def chinese_sets(data: Path) -> dict[str, tuple[list[bench.Labelled], list[bench.Labelled]]]:
    """name -> (fit texts, tune texts): names, street-level addresses, ordinary text (all dev-side splits)."""
    weibo = [bench._ner_sentences([data / "weibo_ner" / f"{n}.jsonl"], {"PER.NAM": "PERSON"}) for n in ("train", "dev")]
    ordinary = bench._sample(bench.zh_ordinary(data, "dev"), 24_000, "zh-tagger")
    cluener, news = bench.cluener(data, "dev"), bench.news_persons(data, "dev")
    chat = names_in_chat(data, cluener + weibo[0] + news)
    return {"cluener": _split(cluener), "weibo": (weibo[0], weibo[1]), "news": _split(news),
            "crosswoz": _split(bench.crosswoz(data, "dev", labelled_only=False)), "ordinary": _split(ordinary),
            "chat": _split(chat)}


def names_in_chat(data: Path, labelled: list[bench.Labelled], n: int = 6000) -> list[bench.Labelled]:
    """Names labelled in the training NER splits, each put at a clause boundary of a real chat or support
    sentence of the train splits (LCCC train, JDDC train), bare (no cue, no title). The NER sets are news and
    posts: without these the models never see a name in support text, and learn that chat holds none. Only
    names of the fit parts are used (the held-back eighths stay unseen)."""
    import random

    names = sorted({it.text[s:e] for it in labelled if not _eighth(it.text) for s, e, ent in it.spans
                    if ent == "PERSON" and e - s >= 2 and regex.fullmatch(r"[\p{Han}·]+", it.text[s:e])})
    sentences = bench._names_sentences(data, "dev")
    rng = random.Random("names-in-chat")
    out = []
    for _ in range(n):
        text, name = rng.choice(sentences), rng.choice(names)
        at = rng.choice([0, *(m.end() for m in regex.finditer(r"[，。！？；,!?]", text))])
        before, after = text[:at], name + rng.choice(["，", "", "说"]) + text[at:]
        out.append(bench.Labelled(before + after, [(at, at + len(name), "PERSON")]))
    return out


def chinese_rows(items: list[bench.Labelled], candidates: list) -> Iterator[tuple[list[str], int]]:
    from curation.pii_zh import TAGGER_CLASSES, char_rows

    for item, cands in zip(items, candidates, strict=True):
        label = [0] * len(item.text)
        for s, e, entity in item.spans:
            if entity in TAGGER_CLASSES:
                label[s:e] = [TAGGER_CLASSES.index(entity)] * (e - s)
        positions, rows = char_rows(item.text, cands)
        for pos, row in zip(positions, rows, strict=True):
            yield row, label[pos]


def name_sentences(data: Path) -> list[tuple[str, set[tuple[int, int]]]]:
    """The name-candidate model's data: CLUENER2020 train (name), Weibo NER train (PER.NAM), MSRA val and People's
    Daily dev (PER), their names in chat (``names_in_chat``), and ordinary chat and questions (LCCC train, BQ /
    LCQMC dev, JDDC train) as negatives."""
    labelled = (bench.cluener(data, "dev") + bench._ner_sentences([data / "weibo_ner" / "train.jsonl"],
                                                                  {"PER.NAM": "PERSON"}) + bench.news_persons(data, "dev"))
    sentences = [(it.text, {(s, e) for s, e, ent in it.spans if ent == "PERSON"})
                 for it in labelled + names_in_chat(data, labelled)]
    return sentences + [(it.text, set()) for it in bench._sample(bench.zh_ordinary(data, "dev"), 40_000, "zh-names")]


def fit_name_candidates(sentences: list[tuple[str, set[tuple[int, int]]]]) -> LinearModel:
    """Positives are candidates (``name_candidates``) that are exactly a labelled name, every other candidate a
    negative; fit on 9/10 by hash, the threshold set on the rest (F-beta with recall weighed double)."""
    from curation.pii_zh import lac_codes, name_candidates, name_features

    fit = [s for s in sentences if hashlib.sha1(s[0].encode()).digest()[0] >= 26]
    tune = [s for s in sentences if hashlib.sha1(s[0].encode()).digest()[0] < 26]

    def examples(rows):
        for text, spans in rows:
            lac = lac_codes(text)
            for start, end, surname_len in name_candidates(text):
                yield name_features(text, start, end, surname_len, lac), int((start, end) in spans)

    rows, labels = zip(*examples(fit), strict=True)
    model = fit_linear(rows, labels, ["other", "PERSON"], c=0.5, weights=[3.0 if y else 1.0 for y in labels],
                       prune=0.01)
    tune_rows, tune_labels = zip(*examples(tune), strict=True)
    probs = model.probabilities(tune_rows)
    gold = np.asarray(tune_labels, dtype=bool)

    def f2(threshold: float) -> float:
        hit = probs >= threshold
        tp, fp, fn = (hit & gold).sum(), (hit & ~gold).sum(), (~hit & gold).sum()
        return 5 * tp / max(1, 5 * tp + 4 * fn + fp)

    model.meta["threshold"] = max((f2(t), t) for t in [i / 20 for i in range(2, 19)])[1]
    return model


NAME_FOLDS = 4


def _fold(text: str) -> int:
    return hashlib.sha1(text.encode()).digest()[3] % NAME_FOLDS


def train_chinese(data: Path, out: Path, c: float = 0.5) -> LinearModel:
    """Fit on 7/8 (Weibo: train), choose each class's (threshold, join) on the rest (Weibo: dev) — the lowest
    mean share leaked (names: CLUENER, Weibo, news; addresses: CrossWOZ, CLUENER) with at most
    ``ZH_ORDINARY_REPLACED_MAX`` of ordinary text replaced, for names together with the candidate model's
    threshold — then refit on all of it and save. The name candidate model (``zh_names.npz``) is fit first on
    ``name_sentences``: the tagger reads its scores."""
    from curation import pii_zh

    names = name_sentences(data)
    sets = chinese_sets(data)
    # The tagger learns from the candidate scores of a model that never saw the text (cross-fitted by fold):
    # in-sample scores would teach it to trust them more than they deserve on new text.
    fold_models = [fit_name_candidates([s for s in names if _fold(s[0]) != k]) for k in range(NAME_FOLDS)]
    candidates = {}
    for name, parts in sets.items():
        candidates[name] = []
        for part in parts:
            scored = [None] * len(part)
            for k, model in enumerate(fold_models):
                where = [i for i, it in enumerate(part) if _fold(it.text) == k]
                for i, cands in zip(where, pii_zh.scored_candidates_batch([part[i].text for i in where], model),
                                    strict=True):
                    scored[i] = cands
            candidates[name].append(scored)
    print(f"candidates scored out of fold by {NAME_FOLDS} models", flush=True)
    shipped = fit_name_candidates(names)
    shipped.meta["trained_on"] = ("CLUENER2020 train name; Weibo NER train PER.NAM; MSRA val PER; People's Daily "
                                  "dev PER; those names put into LCCC train / JDDC train sentences (6,000); negatives: "
                                  "LCCC train, BQ / LCQMC dev, JDDC train (40,000 sampled); 9/10 by sha1; threshold "
                                  "chosen with the tagger's")
    shipped.save(pii_zh.NAME_MODEL)
    pii_zh.name_model.cache_clear()
    print(f"wrote {pii_zh.NAME_MODEL} ({len(shipped.features)} features), threshold {shipped.meta['threshold']}",
          flush=True)

    def fit_on(parts: tuple[int, ...]) -> LinearModel:
        labels: list[int] = []

        def rows():
            for name in sets:
                for part in parts:
                    for row, label in chinese_rows(sets[name][part], candidates[name][part]):
                        labels.append(label)
                        yield row

        started = time.perf_counter()
        model = fit_linear(rows(), labels, pii_zh.TAGGER_CLASSES, c=c)
        print(f"fit on {len(labels)} characters: {len(model.features)} features ({time.perf_counter() - started:.0f}s)",
              flush=True)
        return model

    model = fit_on((0,))
    scored = {}
    for name, (_fit, tune) in sets.items():
        scored[name] = []
        for item, cands in zip(tune, candidates[name][1], strict=True):
            lac = pii_zh.lac_codes(item.text)
            positions, rows = pii_zh.char_rows(item.text, cands, lac)
            probs = model.probabilities(rows) if rows else np.zeros((0, 3))
            scored[name].append((item, positions, probs, cands, lac))
    best = {}
    for entity, judged in (("PERSON", ("cluener", "weibo", "news")), ("STREET_ADDRESS", ("crosswoz", "cluener"))):
        # Names: the candidate model's threshold is chosen with the tagger's (both add names).
        candidate_thresholds = (0.1, 0.15, 0.2, 0.25, 0.3) if entity == "PERSON" else (None,)
        for candidate_threshold in candidate_thresholds:
            for threshold, join in TAGGER_GRID:
                thresholds = {e: (1.1, 1.1) for e in pii_zh.TAGGER_CLASSES[1:]} | {entity: (threshold, join)}
                report = {}
                for name, rows in scored.items():
                    score = bench.Score()
                    for item, positions, probs, cands, lac in rows:
                        spans = [(s, e) for s, e, _p, _e in pii_zh.decode(item.text, positions, probs, thresholds,
                                                                          lac)]
                        if candidate_threshold is not None:
                            spans += [(s, e) for _p, s, e in pii_zh.best_candidates(cands, candidate_threshold)]
                        score.add(item, spans)
                    report[name] = (score.leaked[entity] / max(1, score.total[entity]), 1 - score.kept)
                leaked = float(np.mean([report[n][0] for n in judged]))
                ok = report["ordinary"][1] <= ZH_ORDINARY_REPLACED_MAX
                print(f"{entity} candidates {candidate_threshold} threshold {threshold:.2f} join {join:.2f}: " + " | ".join(
                    f"{n} leaked {r[0]:5.1%} replaced {r[1]:5.2%}" for n, r in report.items()) + ("" if ok else " (too much)"),
                    flush=True)
                # Ties go to what replaces less ordinary text.
                if ok and (entity not in best or (leaked, report["ordinary"][1]) < best[entity][0]):
                    best[entity] = ((leaked, report["ordinary"][1]), threshold, join, candidate_threshold)
    shipped.meta["threshold"] = best["PERSON"][3]
    shipped.save(pii_zh.NAME_MODEL)
    model = fit_on((0, 1))
    for entity, (_leaked, threshold, join, _candidates) in best.items():
        model.meta.update({f"threshold_{entity}": threshold, f"join_{entity}": join})
    model.meta.update(c=c, trained_on=(
        "CLUENER2020 train (name; street-level address), Weibo NER train + dev (PER.NAM), MSRA val + People's "
        "Daily dev (PER), their names put into LCCC train / JDDC train sentences (6,000), CrossWOZ val turns (地址 "
        "of the dialogue acts), ordinary text: LCCC train, BQ / LCQMC dev, JDDC train (24,000 sampled)"))
    model.save(out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {len(model.features)} features), {model.meta}")
    return model


# Of ordinary text's characters the tagger and the name candidates may replace (tune eighth): the target is
# 98% of other text kept, and the rules (numbers, addresses, cues) need their share too.
ZH_ORDINARY_REPLACED_MAX = 0.008
TAGGER_GRID = [(t, j) for t in (0.1, 0.15, 0.2, 0.3, 0.4, 0.5) for j in (0.02, 0.05, 0.1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=["english", "chinese"])
    parser.add_argument("--data", type=Path, default=bench.DATA)
    parser.add_argument("--cache", type=Path, default=None, help="keep spaCy's evidence here between runs")
    parser.add_argument("--c", type=float, default=0.5)
    args = parser.parse_args()
    if args.cache:
        args.cache.mkdir(parents=True, exist_ok=True)
    if args.model == "english":
        train_english(args.data, EN_NAME_MODEL, args.cache, args.c)
    else:
        from curation.pii_zh import TAGGER_MODEL

        train_chinese(args.data, TAGGER_MODEL, args.c)


if __name__ == "__main__":
    main()

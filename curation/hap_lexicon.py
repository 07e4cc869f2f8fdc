"""English spelling variants undone before scoring, and a small lexicon of unambiguous profanity and slurs.

Why: the n-gram model and the encoder learnt abuse from how it is usually spelt, so ``f*ck``, ``sh1t``,
``b!tch``, ``a$$``, ``f u c k`` and ``fuuuuck`` scored 0.01-0.29 where the plain word scores near 1, and a
few outright words are rare enough in the public training sets that alone they score low ("ur a cunt" 0.10).

- :func:`deobfuscate` (inside ``hap_models.model_text``, so the n-grams and the encoder see it, and a rebuild
  trains on it; the shipped models were trained before it): digits between letters read as the letters they
  stand for (``bl4ck``, ``k1ll``); symbols inside a word (``* ! $ @``; never a leading ``$``, a shell variable)
  and runs of a repeated letter are undone only where that gives a lexicon word or one of a few words that are
  abuse in context (a starred word only from four characters: ``a*s`` in code stays as it is); letters spaced
  out one by one (``s c u m``) are joined.
- :func:`explicit_abuse`: the first word of :data:`LEXICON`, or an insult addressed to the reader
  (:data:`INSULT`: "you stupid bot"), in a sentence outside quotation marks (quoting a word to condemn it is not
  using it). An English sentence with one never scores below :data:`LEXICON_FLOOR`: HAP covers profanity aimed
  at nobody ("Damn, that was fast!" is flagged on purpose), and these words have no common ordinary sense.

Every word of :data:`LEXICON` is an entry of the public-domain English list of censor-text/profanity-list
(Unlicense; the Chinese list of the same repository trains the Chinese model), picked by hand for having no
ordinary meaning (``ass``, ``dick``, ``cock``, ``hoe``, ``prick``, ``chink``, ``queer``, ``cripple``, ``fag`` (a
cigarette in British English), ``bastard`` (a file, a king), ``pussy`` (Pussy Riot), ``jackass`` (the films),
``spic`` (SPIC, Spic and Span) and ``retard`` (the verb, physics' retarded potential) are not in it; the words
after "shit" are spelt out, so that Shitterton and "mishit" stay clean), and kept only where the public training sets label most of the
texts that hold it harmful (``nigga`` is not: HateXplain labels most of its posts with it normal).
"""

from __future__ import annotations

import regex

# Stems: a word that is the stem, or the stem with the endings allowed for it, is a lexicon word.
_PROFANITY = r"(?:mother)?fuck\w*|\w*fucker\w*|fuk(?:ing|ed|s)?|fcuk\w*|fck(?:ing|ed)?|bitch\w*|" \
             r"(?:bull|horse|dip|bat|ape|chicken|dog|holy)?shit(?:s|ty|tier|tiest|ter|head|hole|show|ting|ted)?|" \
             r"biatch\w*|cunt\w*|\w*asshole\w*|arsehole\w*|dickhead\w*|twats?|wanker\w*|bollocks|slut\w*|" \
             r"whore\w*|douchebag\w*|dumbass\w*|cocksuck\w*|goddamn\w*|god damn|damn(?:ed|it|s)?|dammit"
_SLURS = r"niggers?|faggots?|kikes?|wetbacks?|ragheads?|towelheads?|gooks?|beaners?|pakis?|shemales?|" \
         r"trann(?:y|ies)"
LEXICON = regex.compile(rf"(?<![\w'])(?:{_PROFANITY}|{_SLURS})(?![\w'])", regex.IGNORECASE)
LEXICON_FLOOR = 0.9

# Spellings a variant may be turned into: the lexicon, and words that are abuse only in context.
_MILD = ("nigga", "niggas", "fag", "fags", "ass", "arse", "dick", "cock", "crap", "piss", "pissed", "hell", "suck",
         "sucks", "idiot", "idiots", "stupid", "scum", "trash", "kill", "die", "hate", "ugly", "loser", "moron",
         "bastard", "pussy", "jackass", "spic", "retard", "retarded")


def _is_target(word: str) -> bool:
    return word in _MILD or LEXICON.fullmatch(word) is not None


# What a word with stars in it (``f**k``, ``sh*t``) may stand for: each star one letter.
_STARRED = ("fuck", "fucking", "fucked", "fucker", "shit", "shitty", "bullshit", "bitch", "bitches", "cunt", "ass",
            "asshole", "damn", "dick", "dickhead", "cock", "pussy", "slut", "whore", "nigger", "nigga", "faggot",
            "crap", "piss", "pissed", "bastard", "hell", "twat", "wanker", "retard", "retarded")
_LEET_DIGITS = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t"}
_DIGITS = str.maketrans(_LEET_DIGITS)
_SYMBOLS = str.maketrans({**_LEET_DIGITS, "@": "a", "$": "s", "!": "i"})
# A digit inside a word, one or two letters from its start or end: "bl4ck", "k1ll", "disabl3d"; not the "4" of a
# hashtag such as "pray4peace".
_DIGIT_BETWEEN_LETTERS = regex.compile(r"(?<=(?<!\w)[a-z]{1,2})[013457]+(?=[a-z])|"
                                       r"(?<=[a-z])[013457]+(?=[a-z]{1,2}(?!\w))")
# A word with something that is not a letter in it: letters, digits and the symbols people spell with.
_VARIANT = regex.compile(r"(?<![\w@$*!])(?=[\w@$*!]*[a-z])(?=[\w@$*!]*[\d@$*!])[\w@*][\w@$*]*(?:[!]+[\w@$*]+)*[$]*")
_REPEATS = regex.compile(r"([a-z])\1{2,}")
_SPACED = regex.compile(r"(?<![\w'])(?:[a-z] ){2,}[a-z](?![\w'])")
_WORD = regex.compile(r"[a-z]+")


def _undo_symbols(word: str) -> str:
    """``f*ck`` / ``sh1t`` / ``b!tch`` / ``a$$`` as the target word it spells, else digits between letters only."""
    mapped = word.translate(_SYMBOLS)
    if "*" in mapped and len(mapped) >= 4:
        pattern = regex.compile(regex.escape(mapped).replace(r"\*", "[a-z]"))
        return next((w for w in _STARRED if pattern.fullmatch(w)), word)
    if mapped.isalpha() and _is_target(mapped):
        return mapped
    return _DIGIT_BETWEEN_LETTERS.sub(lambda m: m.group().translate(_DIGITS), word)


def _undo_repeats(match: regex.Match) -> str:
    """``fuuuuck`` / ``bitchhh``: a run of one letter read once, or twice, where that spells a target word."""
    word = match.group()
    once, twice = _REPEATS.sub(r"\1", word), _REPEATS.sub(r"\1\1", word)
    return next((w for w in (once, twice) if _is_target(w)), word)


def _join_spaced(match: regex.Match) -> str:
    joined = match.group().replace(" ", "")
    if _is_target(joined):
        return joined
    if joined[0] in "ai" and _is_target(joined[1:]):
        return f"{joined[0]} {joined[1:]}"  # "a s l u t": the article, then the word
    return joined if len(joined) > 3 else match.group()  # "u r a" and "x y z" are words, not one spelt out


# Symbols typed between Chinese characters to get abuse past a filter ("傻*逼", "你他.妈.的"); spaces between lone
# characters are closed up before (``curation.text.normalise``).
_BETWEEN_HAN = regex.compile(r"(?<=\p{Han})[*._|~•/\-]+(?=\p{Han})")


def deobfuscate(text: str) -> str:
    """Lower-cased text (its input must be) with spelling variants of abuse spelt plainly; ordinary words are left
    as they are, but a symbol between two Chinese characters goes."""
    text = _BETWEEN_HAN.sub("", text)
    text = _SPACED.sub(_join_spaced, text)
    text = _VARIANT.sub(lambda m: _undo_symbols(m.group()), text)
    return _WORD.sub(lambda m: _undo_repeats(m) if _REPEATS.search(m.group()) else m.group(), text)


# An insult addressed to the reader: "you stupid bot", "you are useless.", "ur such a loser", "you're trash!". It
# must end its clause or name what it insults ("bot", "piece"): "can you dumb it down", "do you clown around",
# "you are useless without internet access" are no insults. "your" and "ur" (also written for "you're") count
# only with an article or intensifier after them ("your a loser"): "ur ugly christmas sweater" is a possessive.
_INTENSIFIERS = r"(?:(?:such|so|an?|really|fucking|just|total|complete|little|absolute)\s+)"
_INSULTS = r"(?:stupid|dumb|idiots?|idiotic|morons?|moronic|useless|worthless|pathetic|retarded|retards?|" \
           r"imbeciles?|brainless|dumbass|losers?|clowns?|ugly|disgusting)"
_INSULTED = r"(?=\s*(?:[.,!?;:)]|$|(?:bot|ai|assistant|chatbot|thing|machine|piece|program|app|person|man|woman|" \
            r"girl|boy|guy|kid|idiot|moron|fool|loser)(?![\w'-])))"
INSULT = regex.compile(rf"(?<![\w'])(?:(?:you|u)\s+{_INTENSIFIERS}*{_INSULTS}"
                       rf"|(?:you['’]re|youre|you are|u r|u are)\s+{_INTENSIFIERS}*(?:{_INSULTS}|scum|trash)"
                       rf"|(?:your|ur)\s+{_INTENSIFIERS}+(?:{_INSULTS}|scum|trash)){_INSULTED}")
_QUOTED = regex.compile(r"\"[^\"]*\"|“[^”]*”|‘[^’]*’|(?<!\w)'[^']*'(?!\w)")


def explicit_abuse(text: str) -> str | None:
    """The first lexicon word or addressed insult of an already deobfuscated sentence, outside quotation marks."""
    unquoted = _QUOTED.sub(" ", text)
    found = LEXICON.search(unquoted) or INSULT.search(unquoted)
    return found.group() if found else None


# Chinese chat's own abuse written in Latin initials or half in Latin (sb / 傻b for 傻逼, nmsl, cnm, mdzz): the
# Chinese models read only the Han characters of a mixed sentence and score "sb客服" 0.04. In COLD train 84 texts
# hold one of these, 78 labelled offensive; no ordinary Chinese training text does. Only sentences with Han
# characters are checked ("sb" is "somebody" in English notes), on text that keeps its case: "SB" is abuse too,
# the other initials only in lower case (TMD, CNM name a disorder and firms), and never before "-", a digit or a
# Latin word (型号SB-200, SB Audigy); 笔 only where no word goes on (笔记本, 笔画).
CHINESE_ABUSE = regex.compile(r"(?<![A-Za-z\d])(?:(?i:sb)|nmsl|w?cnm|mdzz|nmb|rnm|tmd)(?![A-Za-z\d-]|\s+[A-Za-z])"
                              r"|[傻煞](?:[bB](?![A-Za-z])|逼|比(?!较)|笔(?![记画名迹试芯尖直]))")


def chinese_abuse(text: str) -> str | None:
    """The first Chinese abuse word of an NFKC-normalised sentence (case kept)."""
    found = CHINESE_ABUSE.search(_BETWEEN_HAN.sub("", text))
    return found.group() if found else None

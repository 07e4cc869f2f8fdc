"""Check digits of the numbers the scrubber finds and forges: a card's Luhn digit, a 身份证's MOD 11-2, an
IBAN's MOD 97-10.

One place for both, so that detection (is this a card or an ID?) and surrogates (a fake that still passes
the check) agree, in English and Chinese text alike."""

from __future__ import annotations

import regex

RESIDENT_ID = regex.compile(r"(?<![\dA-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
                            r"\d{3}[\dXx](?![\dA-Za-z])")
# The same number typed in groups, one space or hyphen between them: region, birth date, the rest (6-8-4), or the
# year apart from the month and day too (6-4-4-4), as forms and apps lay it out.
GROUPED_RESIDENT_ID = regex.compile(
    r"(?<![\dA-Za-z])[1-9]\d{5}(?P<gap>[ \-])(?:18|19|20)\d{2}(?P=gap)?(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
    r"(?P=gap)\d{3}[\dXx](?![\dA-Za-z])")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def luhn_digit(body: str) -> str:
    """The digit that makes ``body`` + it pass the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def luhn_ok(digits: str) -> bool:
    return len(digits) > 1 and luhn_digit(digits[:-1]) == digits[-1]


def iban_ok(value: str) -> bool:
    """ISO 13616: the country code and check digits moved to the end, letters as 10-35, the number mod 97 is 1."""
    rearranged = value[4:] + value[:4]
    return rearranged.isalnum() and rearranged.isascii() and int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def id_check_ok(value: str) -> bool:
    """The 18th character of a 身份证 number is an ISO 7064 MOD 11-2 check over the first 17."""
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == value[17].upper()


def is_resident_id(digits: str) -> bool:
    return len(digits) == 18 and RESIDENT_ID.fullmatch(digits) is not None and id_check_ok(digits)


# Taiwan's letters stand for 10-35 in this order (I, O and W were added last, out of alphabetical order).
_TAIWAN_LETTERS = {letter: code for code, letter in enumerate("ABCDEFGHJKLMNPQRSTUVXYWZIO", start=10)}
_TAIWAN_WEIGHTS = (1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1)


def taiwan_id_ok(value: str) -> bool:
    """A Taiwan ID or resident certificate number (A123456789): its letter's two digits and the nine after it,
    weighted 1, 9, 8, ..., 1, 1, sum to a multiple of 10."""
    if len(value) != 10 or value[0] not in _TAIWAN_LETTERS or not value[1:].isdigit():
        return False
    code = _TAIWAN_LETTERS[value[0]]
    digits = (code // 10, code % 10, *(int(d) for d in value[1:]))
    return sum(d * w for d, w in zip(digits, _TAIWAN_WEIGHTS, strict=True)) % 10 == 0


def taiwan_id_check_digit(body: str) -> str:
    """The last digit that makes the letter and eight digits of ``body`` a valid Taiwan ID."""
    return next(d for d in "0123456789" if taiwan_id_ok(body + d))


def hong_kong_id_check(letters: str, digits: str) -> str:
    """The check character of a Hong Kong identity card: one or two letters (one is read as a space, 36, before
    it; A is 10) and six digits, weighted 9 down to 2, modulo 11; 10 is written A."""
    values = [36] * (2 - len(letters)) + [ord(c) - 55 for c in letters] + [int(d) for d in digits]
    check = -sum(v * w for v, w in zip(values, range(9, 1, -1), strict=True)) % 11
    return "A" if check == 10 else str(check)

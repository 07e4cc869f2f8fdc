"""PII benchmark on public data written by others: leaks per entity type, text wrongly replaced, docs/s —
ours (``curation.pii.Scrub``) vs plain Presidio in the same run, English and Chinese.

Plain Presidio = the fast path a user would pick: ``BatchAnalyzerEngine`` over ``AnalyzerEngine`` with spaCy
``en_core_web_sm`` (its full pipeline) and Presidio's default recognizers, then ``BatchAnonymizerEngine``, on the
same texts. Both see the same texts in the same run; timing alternates blocks of the two.

Data (read from ``/work/data`` or ``--data``; see benchmarks/DATA.md). ``--split test`` (the default) reports on
splits no detector was tuned on; ``--split dev`` is what the detectors were developed on:

=====================  ======================================  ==========================================
set                    dev (developed on)                      test (reported)
=====================  ======================================  ==========================================
en: PII benchmark      ambientmeta, half by sha1(id) (even)    the other half (odd)
en: CoNLL-2003 PER     train + dev (testa)                     test (testb)
en: WNUT-17 person     train + dev                             test
en: ordinary text      ShareGPT human turns, even sha1         odd sha1 + the en_instructions prompt sets
en: planted values     the en ordinary sentences of dev        those of test (Faker values seeded apart)
en: SGD dialogue turns train + dev: payees, contacts, doctors   test
mixed: planted values  the en and zh planting sentences of dev  those of test (seeded apart)
zh: CLUENER2020        train: name, street-level address       dev
zh: Weibo NER          train + dev: PER.NAM                    test
zh: MSRA / People's    MSRA val, People's Daily dev: PER       MSRA test, People's Daily test
zh: CrossWOZ           val: 电话 / 地址 values of the dialogue   test
zh: real addresses     address-parsing corpus dev, in LCCC      its test file, in LCCC toy_valid + KdConv
                       toy_train sentences                      test sentences
zh: planted values     LCCC toy_train sentences                LCCC toy_valid + KdConv test sentences
zh: planted names      LCCC toy_train + JDDC train sentences   LCCC toy_valid + JDDC test sentences
zh: ordinary text      LCCC train, BQ/LCQMC dev, JDDC train    LCCC valid, BQ/LCQMC test, JDDC test
=====================  ======================================  ==========================================

Planted values: Chinese mobiles, 身份证 numbers (valid check digit), bank cards (Luhn), landlines and emails are
never labelled in public sets, so generated values (Faker ``zh_CN`` and our own formats: separators, ``+86``,
full-width digits) are planted into real public Chinese sentences at a clause boundary, half of them with a cue
word before them and half with none, with no space next to the Chinese characters. The sentences are real; the
values and the planting are ours. ``en-planted`` does the same in English: Faker's names, addresses, phones,
e-mails, IBANs, IPs, cards and SSNs of 12 locales after our carriers ("my name is", "send it to", or bare): a
check of value formats written by others, not of held-out text. ``mixed-planted`` puts Faker en_US names,
phones and addresses into the Chinese sentences and zh_CN names, addresses, mobiles and 身份证 numbers into the
English ones: support logs mix the two languages.

A labelled value *leaks* when any of its parts is left uncovered by the replaced spans: a Latin word or digit
group of 2+ characters, or a single Han character. *Kept* is the share of the other characters (not inside any
labelled value) that come out untouched. A value replaced whole but only by spans of another type ("replaced as
another type": a name swallowed by an address, an SSN called a phone number) gets a surrogate of the wrong kind;
plain Presidio's LOCATION counts as an address. Titles inside a labelled name ("Dr. Mark Kim") are not parts: a
surrogate keeps them. Address labels of CLUENER and Weibo include bare cities and countries
("台湾", "北京"), which are not personal data: only street-level addresses (a road, street, number, building,
village or compound below the district) are scored as addresses; bare places count as other text.

    PYTHONPATH=. .venv/bin/python benchmarks/pii_bench.py [--split test] [--limit 1500] [--data /work/data]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import regex

DATA = Path("/work/data")
BLOCK = 128  # texts per alternating timing block


@dataclass
class Labelled:
    """A text and its labelled personal-data spans ``(start, end, entity)``; ``spans`` may be empty."""

    text: str
    spans: list[tuple[int, int, str]] = field(default_factory=list)


def _jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _odd(key: str) -> bool:
    return hashlib.sha1(key.encode()).digest()[0] % 2 == 1


def _sample(items: list, limit: int, seed: str) -> list:
    if len(items) <= limit:
        return items
    return random.Random(seed).sample(items, limit)


# --- English -------------------------------------------------------------------------------------------
EN_PII_TYPES = {"PERSON": "PERSON", "EMAIL": "EMAIL_ADDRESS", "PHONE": "PHONE_NUMBER", "CREDIT_CARD": "CREDIT_CARD",
                "SSN": "US_SSN"}
_HOUSE_NUMBER = regex.compile(r"\d")


def en_pii_benchmark(data: Path, split: str) -> list[Labelled]:
    """ai4privacy/Gretel/own texts of the AmbientMeta benchmark; LOCATION with a number is a street address,
    without one a town or country (out of scope: not replaced, not scored). ORGANIZATION, NPI and MRN are out of
    scope too."""
    out = []
    for path in sorted((data / "pii_en_ambientmeta" / "data").glob("*/*.jsonl")):
        for row in _jsonl(path):
            if _odd(row["id"]) != (split == "test"):
                continue
            spans = []
            for a in row["annotations"]:
                entity = EN_PII_TYPES.get(a["entity_type"])
                if a["entity_type"] == "LOCATION" and _HOUSE_NUMBER.search(a["text"]):
                    entity = "STREET_ADDRESS"
                if entity:
                    spans.append((a["start"], a["end"], entity))
            out.append(Labelled(row["text"], spans))
    return out


def _ner_sentences(paths: list[Path], labels: dict[str, str]) -> list[Labelled]:
    out = []
    for path in paths:
        for row in _jsonl(path):
            spans = [(s["start"], s["end"], labels[s["label"]]) for s in row["spans"] if s["label"] in labels]
            out.append(Labelled(row["text"], spans))
    return out


def conll_persons(data: Path, split: str) -> list[Labelled]:
    names = ["test.jsonl"] if split == "test" else ["train.jsonl", "dev.jsonl"]
    return _ner_sentences([data / "conll2003" / n for n in names], {"PER": "PERSON"})


def wnut_persons(data: Path, split: str) -> list[Labelled]:
    names = ["test.jsonl"] if split == "test" else ["train.jsonl", "dev.jsonl"]
    return _ner_sentences([data / "wnut17" / n for n in names], {"person": "PERSON"})


def _en_texts(data: Path, split: str) -> list[str]:
    """Real English prompts and user turns: ShareGPT human turns by sha1 half, plus on test the prompt sets."""
    texts = [t["value"] for row in _jsonl(data / "en_conversations" / "sharegpt_sample" / "sharegpt_sample.jsonl")
             for i, t in enumerate(row["conversations"])
             if t["from"] == "human" and _odd(f"{row['id']}:{i}") == (split == "test") and len(t["value"]) < 4000]
    if split == "test":
        base = data / "en_instructions"
        texts += [r["prompt"] for r in _jsonl(base / "koala_test_set" / "koala_test_set.jsonl")]
        texts += [t for r in _jsonl(base / "mt_bench" / "question.jsonl") for t in r["turns"]]
        texts += [r for n in ("en_100_text.jsonl", "prompt_lottery_en_250_text.jsonl")
                  for r in _jsonl(base / "oasst_prompts" / n)]
        texts += [r["instruction"] for r in _jsonl(base / "self_instruct_user_oriented" /
                                                    "user_oriented_instructions.jsonl")]
    return [t for t in texts if t.strip()]


def en_ordinary(data: Path, split: str) -> list[Labelled]:
    """Real prompts and user turns without labels: everything in them counts as other text."""
    return [Labelled(t) for t in _en_texts(data, split)]


# Generated values planted into real English sentences (``en_planted``): Faker's formats in many locales, each
# after a short carrier a user would write, or bare after a comma or at a sentence start. ``{v}`` is the value.
EN_PLANT_LOCALES = ("en_US", "en_GB", "en_CA", "en_AU", "en_IN", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL",
                    "pl_PL", "pt_BR")
EN_PLANT_KINDS = ("name", "first name", "titled surname", "address", "address", "phone", "phone", "email",
                  "iban", "ip", "card", "ssn")
_PERSON_CARRIERS = ("my name is {v}", "I'm {v}", "this is {v}", "regards, {v}", "please forward this to {v}",
                    "{v} asked me to write", "contact {v}")
EN_CARRIERS = {
    "name": _PERSON_CARRIERS,
    "first name": _PERSON_CARRIERS,
    "titled surname": ("dear {v}", "ask {v}", "{v} said"),  # the title goes before every surname
    "address": ("I live at {v}", "send it to {v}", "my address is {v}"),
    "phone": ("call me at {v}", "my number is {v}", "contact {v}"),
    "email": ("email me at {v}", "contact {v}", "send it to {v}"),
    "iban": ("my IBAN is {v}", "send it to {v}"),
    "ip": ("my IP is {v}", "the server is at {v}"),
    "card": ("my card number is {v}", "charge {v}"),
    "ssn": ("my SSN is {v}",),
}
EN_PLANT_ENTITIES = {"name": "PERSON", "first name": "PERSON", "titled surname": "PERSON",
                     "address": "STREET_ADDRESS", "phone": "PHONE_NUMBER", "email": "EMAIL_ADDRESS",
                     "iban": "IBAN_CODE", "ip": "IP_ADDRESS", "card": "CREDIT_CARD", "ssn": "US_SSN"}
_EN_STOPS = r"[,;:!?]|\.(?=\s)"


def _plant_en_value(kind: str, fake, rng: random.Random) -> str:
    """One value of ``kind`` in the format of ``fake``'s locale (a locale-bound Faker)."""
    if kind == "name":
        return f"{fake.first_name()} {fake.last_name()}"
    if kind == "first name":
        return fake.first_name()
    if kind == "titled surname":
        return fake.last_name()
    if kind == "address":
        address = fake.address()
        return address.replace("\n", ", ") if rng.random() < 0.5 else address
    return {"phone": fake.phone_number, "email": fake.email, "iban": fake.iban, "ip": fake.ipv4_public,
            "card": fake.credit_card_number, "ssn": fake.ssn}[kind]()


def en_planted(data: Path, split: str, n: int = 1200) -> list[Labelled]:
    """Faker values of many locales planted at a clause boundary of real English prompts and user turns, after
    a carrier (``EN_CARRIERS``) or bare (a third of them). The sentences are real, the values Faker's formats
    (US SSNs from ``en_US``), the carriers ours."""
    fake, rng = _seeded_faker(f"en-planted:{split}", EN_PLANT_LOCALES)
    sentences = [t for t in _en_texts(data, split) if len(t) <= 1500]
    out = []
    for i in range(n):
        kind = EN_PLANT_KINDS[i % len(EN_PLANT_KINDS)]
        value = _plant_en_value(kind, fake["en_US" if kind == "ssn" else rng.choice(EN_PLANT_LOCALES)], rng)
        carrier = "{v}" if rng.random() < 0.33 else rng.choice(EN_CARRIERS[kind])
        if kind == "titled surname":
            carrier = carrier.replace("{v}", rng.choice(("Mr", "Mr.", "Ms", "Mrs.", "Dr", "Dr.")) + " {v}")
        out.append(_plant_in_english(rng.choice(sentences), carrier, value, EN_PLANT_ENTITIES[kind], rng))
    return out


def _plant_in_english(sentence: str, carrier: str, value: str, entity: str, rng: random.Random) -> Labelled:
    """``carrier`` with ``value`` for its ``{v}``, as a clause at a random clause boundary of an English
    ``sentence``; the value labelled ``entity``."""
    at, before, after, joiner = _clause_boundary(sentence, rng, _EN_STOPS, ", ")
    if at == 0:
        carrier = carrier[0].upper() + carrier[1:]
        tail = rng.choice((". ", ", ", "\n")) if after else ""
    else:
        joiner += "" if joiner else " "
        tail = ("," if before.endswith(",") else ".") + ("" if after[:1].isspace() or not after else " ")
    head = carrier[:carrier.index("{v}")]
    start = len(before) + len(joiner) + len(head)
    text = before + joiner + carrier.replace("{v}", value) + tail + after
    return Labelled(text, [(start, start + len(value), entity)])


# Slots of the schema-guided dialogue corpus that hold a person's name. The doctor slots also hold practices
# ("Access Dental - Santa Rosa"): a turn whose value has a firm's word is left out, its label is no person.
SGD_PERSON_SLOTS = {"recipient_account_name", "recipient_name", "contact_name", "receiver", "dentist_name",
                    "doctor_name", "therapist_name"}
_SGD_FIRM = regex.compile(
    r"\b(?i:dental|dentist\w*|care|cent(?:er|re)s?|medical|group|health\w*|clinic|associates|spa|institute|inc|"
    r"office|lab|practice|specialized|physicians|family|smile|arts|orthodontics|kids|pediatric\w*|hospital|services|"
    r"foundation|counseling|therapy|wellness|partners|llc|dermatology|eye\w*|retina|skin|surgery|radiology|"
    r"sinus|ent|miracles|cleaning|smiles?|relationships)\b|[:&@]|\p{Ll}\p{Lu}")
_DEGREE = regex.compile(r"(?:,?[ \t]*(?:M\.?D\.?|Ph\.?D\.?|Psyd|PsyD|DDS|DMD|MPH|MMS|FACOG|NCMP|DO|dr)\.?)+$", regex.I)


def en_sgd(data: Path, split: str) -> list[Labelled]:
    """Turns of the schema-guided dialogue corpus (SGD) with a payee, a contact or a doctor named in them, and as
    many turns naming no one; a degree after a name ("Abazari Mina MD") is not part of the value."""
    folders = ["test"] if split == "test" else ["train", "dev"]
    named, other = {}, {}
    for folder in folders:
        for path in sorted((data / "sgd" / folder).glob("dialogues_*.json")):
            for dialogue in json.loads(path.read_text(encoding="utf-8")):
                for turn in dialogue["turns"]:
                    text = turn["utterance"]
                    slots = [s for frame in turn["frames"] for s in frame["slots"] if s["slot"] in SGD_PERSON_SLOTS]
                    if any(_SGD_FIRM.search(text[s["start"]:s["exclusive_end"]]) for s in slots):
                        continue
                    spans = []
                    for s in slots:
                        start, end = s["start"], s["exclusive_end"]
                        degree = _DEGREE.search(text, start, end)
                        spans.append((start, degree.start() if degree and degree.start() > start else end, "PERSON"))
                    (named if spans else other).setdefault(text, sorted(set(spans)))
    people = [Labelled(t, spans) for t, spans in named.items()]
    return people + _sample([Labelled(t) for t in other], len(people), "sgd-other")


# --- Chinese -------------------------------------------------------------------------------------------


def cluener(data: Path, split: str) -> list[Labelled]:
    from curation.pii_zh import street_level

    path = data / "cluener2020" / ("dev.json" if split == "test" else "train.json")
    out = []
    for row in _jsonl(path):
        spans = []
        for label, entity in (("name", "PERSON"), ("address", "STREET_ADDRESS")):
            for surface, places in row["label"].get(label, {}).items():
                if entity == "STREET_ADDRESS" and not street_level(surface):
                    continue
                spans += [(s, e + 1, entity) for s, e in places]
        out.append(Labelled(row["text"], spans))
    return out


def weibo(data: Path, split: str) -> list[Labelled]:
    names = ["test.jsonl"] if split == "test" else ["train.jsonl", "dev.jsonl"]
    return _ner_sentences([data / "weibo_ner" / n for n in names], {"PER.NAM": "PERSON"})


def news_persons(data: Path, split: str) -> list[Labelled]:
    names = [("msra_ner", "test.jsonl"), ("peoples_daily_ner", "test.jsonl")] if split == "test" else \
        [("msra_ner", "val.jsonl"), ("peoples_daily_ner", "dev.jsonl")]
    return _ner_sentences([data / d / n for d, n in names], {"PER": "PERSON"})


def crosswoz(data: Path, split: str, labelled_only: bool = True) -> list[Labelled]:
    """System turns of CrossWOZ with the phone numbers and addresses its dialogue acts inform (public venues'
    numbers and addresses: real formats, labelled by the data set); with ``labelled_only=False`` every turn."""
    from curation.pii_zh import street_level

    path = data / "zh_dialogue" / "crosswoz" / ("test.turns.jsonl" if split == "test" else "val.turns.jsonl")
    out = []
    for row in _jsonl(path):
        spans = []
        for act in row["dialog_act"]:
            if act[0] != "Inform" or act[2] not in ("电话", "地址"):
                continue
            entity = "PHONE_NUMBER" if act[2] == "电话" else "STREET_ADDRESS"
            for value in act[3].split() if entity == "PHONE_NUMBER" else [act[3]]:
                if entity == "STREET_ADDRESS" and not street_level(value):
                    continue
                start = row["text"].find(value)
                if start >= 0:
                    spans.append((start, start + len(value), entity))
        if spans or not labelled_only:
            out.append(Labelled(row["text"], spans))
    return out


def _zh_sentences(data: Path, split: str) -> list[str]:
    base = data / "zh_dialogue"
    if split == "test":
        rows = [r["text"] for r in _jsonl(base / "lccc_cdial_toy" / "valid.turns.jsonl")]
        rows += [r["text"] for r in _jsonl(base / "kdconv" / "test.turns.jsonl")]
    else:
        rows = [r["text"] for r in _jsonl(base / "lccc_cdial_toy" / "train.turns.jsonl")]
    return [t for t in rows if len(t) >= 6 and not regex.search(r"[A-Za-z0-9@]", t)]


_FULL_WIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")
PLANT_CUES = {
    "PHONE_NUMBER": ("手机号", "电话", "联系方式", "打我电话", "手机"),
    "CN_ID_CARD": ("身份证号", "身份证", "证件号码", "身份证号码是"),
    "CREDIT_CARD": ("银行卡号", "卡号", "银行卡", "转到这张卡"),
    "EMAIL_ADDRESS": ("邮箱", "发到邮箱", "电子邮件"),
}


def _plant_value(entity: str, fake, rng: random.Random) -> str:
    if entity == "PHONE_NUMBER":
        kind = rng.random()
        if kind < 0.25:  # landline with area code
            area = rng.choice(["010", "021", "020", "0755", "0571", "028", "027"])
            number = f"{rng.randint(2, 8)}{rng.randint(0, 9999999):07d}"[: 8 if len(area) == 3 else 7]
            return f"{area}-{number}" if rng.random() < 0.7 else f"({area}){number}"
        value = fake.phone_number()
        if kind < 0.5:
            value = f"{value[:3]}-{value[3:7]}-{value[7:]}"
        elif kind < 0.65:
            value = f"{value[:3]} {value[3:7]} {value[7:]}"
        elif kind < 0.75:
            value = f"+86 {value}"
        return value.translate(_FULL_WIDTH) if rng.random() < 0.15 else value
    if entity == "CN_ID_CARD":
        value = fake.ssn()
        return value.translate(_FULL_WIDTH) if rng.random() < 0.15 else value
    if entity == "CREDIT_CARD":
        value = _unionpay(rng)
        return " ".join(value[i:i + 4] for i in range(0, len(value), 4)) if rng.random() < 0.4 else value
    return fake.email() if rng.random() < 0.5 else f"{fake.user_name()}{rng.randint(1, 999)}@{rng.choice(['qq.com', '163.com', '126.com', 'sina.com', 'foxmail.com'])}"


def _unionpay(rng: random.Random) -> str:
    """A 16- or 19-digit UnionPay-style number (62...) with a valid Luhn digit."""
    from curation.checksums import luhn_digit

    body = "62" + "".join(str(rng.randint(0, 9)) for _ in range(rng.choice([13, 16])))
    return body + luhn_digit(body)


def _seeded_faker(seed: str, locales: tuple[str, ...] = ("zh_CN",)):
    """A Faker of ``locales`` and a random generator, both fixed by ``seed``: a planted set is the same on every
    run."""
    from faker import Faker

    fake = Faker(list(locales))
    rng = random.Random(seed)
    fake.seed_instance(rng.getrandbits(32))
    return fake, rng


def _clause_boundary(text: str, rng: random.Random, stops: str = r"[，。！？；,!?]",
                     comma: str = "，") -> tuple[int, str, str, str]:
    """A random clause boundary of ``text`` (its start, or just after a match of ``stops``): where it is, the
    text before and after it, and the ``comma`` a planted clause needs after ``before``."""
    clauses = [m.end() for m in regex.finditer(stops, text)] or [len(text)]
    at = rng.choice([0, *clauses])
    before = text[:at]
    return at, before, text[at:], "" if at == 0 or regex.search(r"\p{P}$", before) else comma


def planted(data: Path, split: str, n: int = 1200) -> list[Labelled]:
    """Generated values planted into real public Chinese sentences (see the module docstring)."""
    fake, rng = _seeded_faker(f"planted:{split}")
    sentences = _zh_sentences(data, split)
    out = []
    for i in range(n):
        entity = ("PHONE_NUMBER", "CN_ID_CARD", "CREDIT_CARD", "EMAIL_ADDRESS")[i % 4]
        text = rng.choice(sentences)
        value = _plant_value(entity, fake, rng)
        cue = rng.choice(PLANT_CUES[entity]) + rng.choice(["", "：", "是"]) if rng.random() < 0.5 else ""
        out.append(_plant_in_chinese(text, cue + "{v}", value, entity, rng))
    return out


def _plant_in_chinese(sentence: str, carrier: str, value: str, entity: str, rng: random.Random) -> Labelled:
    """``carrier`` with ``value`` for its ``{v}`` at a random clause boundary of a Chinese ``sentence``, with no
    space around it; the value labelled ``entity``."""
    at, before, after, joiner = _clause_boundary(sentence, rng)
    head, tail = carrier.split("{v}")
    insert = f"{joiner}{head}{value}{tail}"
    start = len(before) + len(joiner) + len(head)
    if at == 0 and after:
        insert += rng.choice(["，", "", " "])
    return Labelled(before + insert + after, [(start, start + len(value), entity)])


# Real Chinese addresses (``zh_addresses``): the address-parsing corpus of Li et al. (NAACL 2019,
# leodotnet/neural-chinese-address-parsing), addresses as users typed them into a delivery form, down to the
# shop, building and room. Its files are character-per-line with element tags; "_" marks a separator.
ADDRESS_FILES = {"train": "train.txt", "dev": "dev.txt", "test": "test.txt"}
ADDRESS_CUES = ("请寄到", "收货地址：", "地址：", "送到", "我家在", "我的地址是", "")


def chinese_addresses(data: Path, part: str) -> list[str]:
    """The street-level addresses of one file of the corpus (``ADDRESS_FILES``), separators as spaces."""
    from curation.pii_zh import street_level

    out, chars = [], []
    for line in (data / "zh_address" / ADDRESS_FILES[part]).open(encoding="utf-8"):
        token = line.rstrip("\n").rsplit(" ", 1)[0]
        if token.strip():
            chars.append(" " if token == "_" else token)
        elif chars:
            value = regex.sub(r" +", " ", "".join(chars)).strip()
            if street_level(value):
                out.append(value)
            chars = []
    return out


def plant_address(sentence: str, value: str, rng: random.Random) -> Labelled:
    """``value`` at a random clause boundary of ``sentence``, after a cue of ``ADDRESS_CUES`` (one in seven bare)
    and before a punctuation mark or space where the sentence goes on: glued to the next clause ("…城东路妹妹就…"),
    not even a reader could tell where an address ends."""
    at, before, after, joiner = _clause_boundary(sentence, rng)
    cue = rng.choice(ADDRESS_CUES)
    start = len(before) + len(joiner) + len(cue)
    stop = rng.choice(["，", "。", "！", " "]) if after else ""
    return Labelled(before + joiner + cue + value + stop + after, [(start, start + len(value), "STREET_ADDRESS")])


def zh_addresses(data: Path, split: str) -> list[Labelled]:
    """Each real address (test: the corpus's test file; dev: its dev file) planted in a real Chinese sentence
    (``plant_address``), labelled whole."""
    rng = random.Random(f"zh-addresses:{split}")
    sentences = _zh_sentences(data, split)
    return [plant_address(rng.choice(sentences), value, rng)
            for value in chinese_addresses(data, "test" if split == "test" else "dev")]


# Mixed text (``mixed_planted``): English values in Chinese sentences and Chinese values in English ones, as
# support logs of either language carry them. Carriers are ours; ``{v}`` is the value.
MIXED_KINDS = (("zh", "PERSON"), ("zh", "PHONE_NUMBER"), ("zh", "STREET_ADDRESS"), ("en", "PERSON"),
               ("en", "PHONE_NUMBER"), ("en", "CN_ID_CARD"), ("en", "STREET_ADDRESS"))
MIXED_CARRIERS = {
    ("zh", "PERSON"): ("联系人：{v}", "我的英文名是{v}", "请转给{v}处理", "{v}说明天到", "客户{v}", "{v}"),
    ("zh", "PHONE_NUMBER"): ("电话：{v}", "请拨{v}联系我", "我的美国号码是{v}", "{v}"),
    ("zh", "STREET_ADDRESS"): ("请寄到{v}", "地址：{v}", "{v}"),
    ("en", "PERSON"): ("my name is {v}", "please contact {v}", "{v} will call you", "forward this to {v}", "{v}"),
    ("en", "PHONE_NUMBER"): ("call me at {v}", "my phone is {v}", "{v}"),
    ("en", "CN_ID_CARD"): ("my ID number is {v}", "ID: {v}", "{v}"),
    ("en", "STREET_ADDRESS"): ("ship it to {v}", "my address is {v}", "{v}"),
}


def mixed_planted(data: Path, split: str, n: int = 1400) -> list[Labelled]:
    """Faker en_US names, phones and addresses in real Chinese sentences (half of them with a space on each
    side), and Faker zh_CN names and addresses, Chinese mobiles and 身份证 numbers in real English ones."""
    fake, rng = _seeded_faker(f"mixed:{split}", ("en_US", "zh_CN"))
    zh_sentences, en_sentences = _zh_sentences(data, split), [t for t in _en_texts(data, split) if len(t) <= 1500]
    out = []
    for i in range(n):
        host, entity = MIXED_KINDS[i % len(MIXED_KINDS)]
        carrier = rng.choice(MIXED_CARRIERS[host, entity])
        if host == "zh":
            local = fake["en_US"]
            value = local.name() if entity == "PERSON" else local.phone_number() if entity == "PHONE_NUMBER" else \
                local.address().replace("\n", ", ")
            carrier = carrier.replace("{v}", " {v} ") if rng.random() < 0.5 else carrier
            out.append(_plant_in_chinese(rng.choice(zh_sentences), carrier, value, entity, rng))
        else:
            local = fake["zh_CN"]
            value = local.name() if entity == "PERSON" else local.address() if entity == "STREET_ADDRESS" else \
                _plant_value(entity, local, rng)
            out.append(_plant_in_english(rng.choice(en_sentences), carrier, value, entity, rng))
    return out


# Name forms in support logs and chat: a cue before or a title after (what a form or an agent writes), or
# none (a vocative, the subject or object of a verb). ``{n}`` is a full name, ``{s}`` its surname; the labelled
# value is the part in braces.
NAME_FORMS_CUED = ("我叫{n}", "我是{n}", "本人{n}", "联系人：{n}", "收件人：{n}", "收货人{n}", "姓名：{n}",
                   "{s}先生", "{s}女士", "{n}先生", "{n}老师", "{s}经理", "客户{n}", "配送员{n}")
NAME_FORMS_BARE = ("{n}，", "{n}说", "和{n}", "跟{n}", "给{n}", "找{n}", "问问{n}", "{n}的")


def _names_sentences(data: Path, split: str) -> list[str]:
    """Real chat turns (LCCC) and customer-service replies (JDDC) without Latin letters or digits."""
    path = data / "zh_dialogue" / "jddc_extract" / ("test.dec" if split == "test" else "train.dec")
    replies = [line.strip().rstrip(",") for line in path.open(encoding="utf-8")]
    return _zh_sentences(data, split)[:4000] + [t for t in replies if len(t) >= 6
                                                 and not regex.search(r"[A-Za-z0-9@]", t)]


def planted_names(data: Path, split: str, n: int = 1000) -> list[Labelled]:
    """Faker ``zh_CN`` names planted at a clause boundary of real chat and support sentences, half in a cued
    form (``NAME_FORMS_CUED``), half bare (``NAME_FORMS_BARE``). The sentences are real; names and forms ours."""
    fake, rng = _seeded_faker(f"planted-names:{split}")
    sentences = _names_sentences(data, split)
    out = []
    for i in range(n):
        text = rng.choice(sentences)
        form = rng.choice(NAME_FORMS_CUED if i % 2 else NAME_FORMS_BARE)
        surname, given = fake.last_name(), fake.first_name()
        value = surname if "{s}" in form else surname + given
        head = form[:form.index("{")]
        at, before, after, joiner = _clause_boundary(text, rng)
        insert = joiner + form.format(n=value, s=value)
        if at == 0 and after and not insert.endswith("，"):
            insert += "，"
        elif not after:
            insert = insert.rstrip("，")
        start = len(before) + len(joiner) + len(head)
        out.append(Labelled(before + insert + after, [(start, start + len(value), "PERSON")]))
    return out


def zh_ordinary(data: Path, split: str) -> list[Labelled]:
    base = data / "zh_dialogue"
    if split == "test":
        texts = [r["text"] for r in _jsonl(base / "lccc_cdial_toy" / "valid.turns.jsonl")]
        qfiles = [data / "zh_questions" / "bq_corpus" / "test.tsv", data / "zh_questions" / "lcqmc" / "test.tsv"]
        jddc = base / "jddc_extract" / "test.dec"
    else:
        texts = [r["text"] for r in _jsonl(base / "lccc_cdial_toy" / "train.turns.jsonl")]
        qfiles = [data / "zh_questions" / "bq_corpus" / "dev.tsv", data / "zh_questions" / "lcqmc" / "dev.tsv"]
        jddc = base / "jddc_extract" / "train.dec"
    for path in qfiles:
        with path.open(encoding="utf-8") as fh:
            texts += [cell for row in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE) for cell in row[:2]]
    texts += [line.strip().rstrip(",") for line in jddc.open(encoding="utf-8")]
    return [Labelled(t) for t in texts if t.strip()]


SETS: dict[str, tuple[str, Callable[[Path, str], list[Labelled]]]] = {
    "en-pii-benchmark": ("en", en_pii_benchmark),
    "en-conll-persons": ("en", conll_persons),
    "en-wnut-persons": ("en", wnut_persons),
    "en-ordinary": ("en", en_ordinary),
    "en-planted": ("en", en_planted),
    "en-sgd": ("en", en_sgd),
    "mixed-planted": ("mixed", mixed_planted),
    "zh-cluener": ("zh", cluener),
    "zh-weibo": ("zh", weibo),
    "zh-news-persons": ("zh", news_persons),
    "zh-crosswoz": ("zh", crosswoz),
    "zh-addresses": ("zh", zh_addresses),
    "zh-planted": ("zh", planted),
    "zh-planted-names": ("zh", planted_names),
    "zh-ordinary": ("zh", zh_ordinary),
}


# --- scoring -------------------------------------------------------------------------------------------
PART = regex.compile(r"(?!(?:Dr|Mr|Mrs|Ms|Miss|Prof|Sir|Jr|Sr)\b)[\p{Latin}\p{N}]{2,}|\p{Han}")


@dataclass
class Score:
    total: Counter = field(default_factory=Counter)
    leaked: Counter = field(default_factory=Counter)
    other_chars: int = 0
    other_replaced: int = 0
    mistyped: Counter = field(default_factory=Counter)
    texts: int = 0
    texts_changed_without_pii: int = 0

    def add(self, item: Labelled, predicted: list[tuple]) -> None:
        """``predicted``: ``(start, end)`` or ``(start, end, entity)`` spans; with an entity, a value replaced whole
        by spans none of which has its type (``SAME_TYPE``) counts as mistyped: its surrogate is of the wrong kind."""
        covered = bytearray(len(item.text) + 1)
        for start, end, *_ in predicted:
            covered[start:end] = b"\x01" * (end - start)
        labelled = bytearray(len(item.text) + 1)
        for start, end, entity in item.spans:
            labelled[start:end] = b"\x01" * (end - start)
            self.total[entity] += 1
            if any(0 in covered[m.start():m.end()] for m in PART.finditer(item.text, start, end)):
                self.leaked[entity] += 1
            elif typed := [p[2] for p in predicted if len(p) > 2 and p[0] < end and start < p[1]]:
                if not any(SAME_TYPE.get(t, t) == entity for t in typed):
                    self.mistyped[entity] += 1
        self.texts += 1
        other = [i for i, ch in enumerate(item.text) if not labelled[i] and not ch.isspace()]
        self.other_chars += len(other)
        replaced = sum(covered[i] for i in other)
        self.other_replaced += replaced
        if not item.spans and replaced:
            self.texts_changed_without_pii += 1

    @property
    def kept(self) -> float:
        return 1 - self.other_replaced / max(1, self.other_chars)


# The types each system calls a labelled entity: plain Presidio calls an address a LOCATION.
SAME_TYPE = {"LOCATION": "STREET_ADDRESS"}


def rate(score: Score, entity: str | None = None) -> str:
    total = score.total[entity] if entity else sum(score.total.values())
    leaked = score.leaked[entity] if entity else sum(score.leaked.values())
    return f"{leaked / total:6.1%} ({leaked}/{total})" if total else "-"


# --- the two systems -----------------------------------------------------------------------------------
class Plain:
    """Plain Presidio, batched: what a user would pick instead."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider
        from presidio_anonymizer import BatchAnonymizerEngine

        from curation.pii import SPACY_MODEL, offline_tldextract

        offline_tldextract()
        nlp_engine = NlpEngineProvider(nlp_configuration={
            "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": SPACY_MODEL}]}).create_engine()
        self.analyzer = BatchAnalyzerEngine(AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=["en"]))
        self.anonymizer = BatchAnonymizerEngine()

    def run(self, texts: list[str], lang: str = "en") -> list[list[tuple[int, int, str]]]:
        started = time.perf_counter()
        results = list(self.analyzer.analyze_iterator(texts, language="en", batch_size=64))
        self.anonymizer.anonymize_list(texts, results)
        self.seconds[lang] += time.perf_counter() - started
        return [[(r.start, r.end, r.entity_type) for r in found] for found in results]


class Ours:
    """The scrub step as ``flywheel scrub`` runs it (timed), then its detector again for the spans (untimed)."""

    def __init__(self) -> None:
        from curation.pii import Scrub
        from flywheel.settings import ScrubSettings

        self.seconds: Counter[str] = Counter()
        self.scrub = Scrub(ScrubSettings(), fields=["text"])

    def run(self, texts: list[str], lang: str = "en") -> list[list[tuple[int, int, str]]]:
        from curation.pii import propagate

        started = time.perf_counter()
        list(self.scrub({"text": t} for t in texts))
        self.seconds[lang] += time.perf_counter() - started
        found = self.scrub.detector.detect(texts)
        return [[(f.start, f.end, f.entity) for f in propagate([t], [spans])[0]]
                for t, spans in zip(texts, found, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test", choices=["dev", "test"])
    parser.add_argument("--limit", type=int, default=1500, help="texts per set at most (a fixed sample)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated subset of: " + ", ".join(SETS))
    parser.add_argument("--no-plain", action="store_true", help="skip plain Presidio (quicker tuning runs)")
    args = parser.parse_args()
    if not (args.data / "MANIFEST.md").exists():
        sys.exit(f"pii_bench: no public data under {args.data} (it is not shipped with the repository); rebuild "
                 "it there with benchmarks/public_data.py (see benchmarks/DATA.md), or point --data at it")
    wanted = [s for s in args.sets.split(",") if s]
    ours, plain = Ours(), None if args.no_plain else Plain()
    ours.run(["warm up Jane Roe 张伟"], "warm-up")
    if plain:
        plain.run(["warm up Jane Roe"], "warm-up")
    docs = Counter()
    print(f"PII benchmark, split={args.split}, at most {args.limit} texts per set\n")
    header = f"{'set':18} {'entity':15} | {'plain leaked':>18} | {'ours leaked':>18}"
    print(header + "\n" + "-" * len(header))
    for name in wanted:
        lang, load = SETS[name]
        try:
            items = _sample(load(args.data, args.split), args.limit, name)
        except FileNotFoundError as missing:
            sys.exit(f"pii_bench: {name} needs {missing.filename}, which is missing; rebuild it with "
                     "benchmarks/public_data.py (see benchmarks/DATA.md), or point --data at it")
        texts = [it.text for it in items]
        scores = {"ours": Score(), "plain": Score()}
        for i in range(0, len(texts), BLOCK):
            block = texts[i:i + BLOCK]
            for system_name, system in (("plain", plain), ("ours", ours)):
                if system is None:
                    continue
                found = system.run(block, lang)
                for item, spans in zip(items[i:i + BLOCK], found, strict=True):
                    scores[system_name].add(item, spans)
        docs[lang] += len(texts)
        for entity in sorted(scores["ours"].total):
            print(f"{name:18} {entity:15} | {rate(scores['plain'], entity) if plain else '':>18} | "
                  f"{rate(scores['ours'], entity):>18}")
        if len(scores["ours"].total) > 1:
            print(f"{name:18} {'all values':15} | {rate(scores['plain']) if plain else '':>18} | "
                  f"{rate(scores['ours']):>18}")
        mistyped = {system: sum(score.mistyped.values()) for system, score in scores.items()}
        if any(mistyped.values()):
            print(f"{name:18} {'replaced as another type':15} | {mistyped['plain'] if plain else '':>18} | "
                  f"{mistyped['ours']:>18}   ({', '.join(f'{e} {n}' for e, n in sorted(scores['ours'].mistyped.items()))})")
        plain_kept = f"{scores['plain'].kept:18.2%}" if plain else " " * 18
        print(f"{name:18} {'other text kept':15} | {plain_kept} | {scores['ours'].kept:18.2%}   "
              f"({len(texts)} texts; changed without PII: ours {scores['ours'].texts_changed_without_pii}"
              + (f", plain {scores['plain'].texts_changed_without_pii})" if plain else ")"))
    print()
    for lang in sorted(docs):
        ours_rate = docs[lang] / ours.seconds[lang]
        line = f"{lang}: {docs[lang]} texts, ours {ours_rate:.0f} docs/s"
        if plain:
            plain_rate = docs[lang] / plain.seconds[lang]
            line += f", plain Presidio {plain_rate:.0f} docs/s -> {ours_rate / plain_rate:.2f}x"
        print(line)


if __name__ == "__main__":
    main()

"""Public data sets written and labelled by others, as the HAP models were trained, tuned and measured on them.

Nothing here ships data: each loader reads a local copy (``FLYWHEEL_PUBLIC_DATA``, default ``/work/data``;
benchmarks/DATA.md says where each file comes from, benchmarks/public_data.py rebuilds it) and says clearly
which file is missing. Splits are fixed so that the training script (``curation/hap_train.py``) and the
benchmark (``benchmarks/hap_bench.py``) agree on what a model saw: official splits where a set has them, else
a hash of each item's id or text (``split_of``), never a random draw.

What each set is for:

- train: OLID train (``train`` part), the implicit-hate corpus (``train`` part), HateXplain validation,
  COLD train; ordinary text as negatives: ShareGPT (``train`` half of the conversations), OpenAssistant
  prompts, Arena-Hard (``train`` half); Chinese dialogues and questions (CrossWOZ val, KdConv dev, LCCC toy
  train, JDDC train, LCQMC dev, BQ dev).
- tune (thresholds, regularisation): OLID train (``dev`` part), implicit-hate (``dev`` part), COLD dev
  (``tune`` half).
- measure only: OLID test, implicit-hate (``test`` part), HateXplain test, ETHOS, HateCheck, the Gab Hate Corpus
  test file, COLD dev (``report`` half); ShareGPT ``test`` half, self-instruct, Koala, MT-bench, OpenAssistant
  en_100, Arena-Hard ``test`` half; CrossWOZ test, KdConv test, LCCC toy valid, JDDC test, LCQMC test, BQ test,
  OPPO.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import regex

from curation.text import sentences

csv.field_size_limit(10_000_000)


def data_root() -> Path:
    return Path(os.environ.get("FLYWHEEL_PUBLIC_DATA", "/work/data"))


@dataclass(frozen=True)
class Example:
    text: str
    label: int          # 1 harmful, 0 not
    kind: str = ""      # finer label: explicit / implicit / offensive / a HateCheck functionality ...


def split_of(key: str, parts: dict[str, float]) -> str:
    """A stable split for ``key``: the blake2b hash of the key, mapped onto the cumulative shares."""
    point = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") / 2**64
    total = 0.0
    for name, share in parts.items():
        total += share
        if point < total:
            return name
    return name


def _path(*parts: str) -> Path:
    path = data_root().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the HAP data sets live under FLYWHEEL_PUBLIC_DATA "
                                f"({data_root()}); rebuild them with benchmarks/public_data.py "
                                "(benchmarks/DATA.md says where each one comes from)")
    return path


def _jsonl(*parts: str) -> Iterator[dict]:
    with _path(*parts).open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _rows(*parts: str, delimiter: str = ",") -> Iterator[dict]:
    with _path(*parts).open(encoding="utf-8-sig", newline="") as fh:
        yield from csv.DictReader(fh, delimiter=delimiter)


# Social-media placeholders and handles that only the labelled sets carry: left in, a model learns "looks like
# a tweet" instead of "is abusive". Removed from training and scoring texts alike.
_PLACEHOLDER = regex.compile(r"(?i)@user\b|<(?:user|url|number|percent|money|censored)>|\burl\b|@\w+|https?://\S+|"
                             r"\brt\b|&amp;|&lt;|&gt;")


def clean(text: str) -> str:
    return " ".join(_PLACEHOLDER.sub(" ", text).replace("#", " ").split())


# --- English abuse and hate -----------------------------------------------------------------------------------
OLID_PARTS = {"train": 0.9, "dev": 0.1}
IMPLICIT_HATE_PARTS = {"train": 0.8, "dev": 0.1, "test": 0.1}


def olid(split: str) -> list[Example]:
    """OLID (OffensEval 2019) level A: OFF (profanity or a targeted offence) vs NOT. ``train``/``dev`` are fixed
    parts of the official training file, ``test`` is the official test set. kind: group/individual/other/
    untargeted for OFF."""
    if split == "test":
        labels = {r["id"]: r["label"] for r in _rows("olid", "original", "labels-levela.csv")}
        return [Example(clean(r["tweet"]), int(labels[r["id"]] == "OFF"), "offensive" if labels[r["id"]] == "OFF"
                        else "") for r in _rows("olid", "original", "testset-levela.tsv", delimiter="\t")]
    kinds = {"GRP": "group", "IND": "individual", "OTH": "other"}
    return [Example(clean(r["tweet"]), int(r["subtask_a"] == "OFF"),
                    (kinds.get(r["subtask_c"], "untargeted") if r["subtask_a"] == "OFF" else ""))
            for r in _rows("olid", "original", "olid-training-v1.0.tsv", delimiter="\t")
            if split_of("olid:" + r["id"], OLID_PARTS) == split]


_LONE_QUOTES = regex.compile(r'(?<!\S)"+(?!\S)|^\s*"+|"+\s*$')  # the corpus's CSV quoting left stray quote tokens


def implicit_hate(split: str) -> list[Example]:
    """The implicit-hate corpus (stage 1): explicit_hate / implicit_hate / not_hate tweets; fixed parts by text."""
    out = []
    for r in _rows("implicit_hate", "original", "implicit_hate_v1_stg1_posts.tsv", delimiter="\t"):
        text = clean(_LONE_QUOTES.sub(" ", r["post"]))
        if text and split_of("ih:" + text, IMPLICIT_HATE_PARTS) == split:
            kind = r["class"].removesuffix("_hate")
            out.append(Example(text, int(kind != "not"), "" if kind == "not" else kind))
    return out


def hatexplain(split: str) -> list[Example]:
    """HateXplain ``val`` or ``test`` (majority label): hatespeech / offensive / normal."""
    name = {"val": "val.jsonl", "test": "test.jsonl"}[split]
    return [Example(clean(r["text"]), int(r["majority_label"] != "normal"),
                    "" if r["majority_label"] == "normal" else r["majority_label"])
            for r in _jsonl("hatexplain", name)]


def dynahate() -> list[Example]:
    """The Dynamically Generated Hate Speech dataset's test split, less texts also in its train split: hate / not
    hate entries written by annotators to fool a model, many a minimal rewrite of another with the stance changed
    ("immigrants are a burden" / "… are not a burden"). Measure only: training on its train split was tried and
    not shipped (benchmarks/RESULTS.md, HAP, sixteenth round)."""
    seen = {r["text"] for r in _jsonl("dynahate", "train.jsonl")}
    return [Example(clean(r["text"]), r["label"], "hate" if r["label"] else "")
            for r in _jsonl("dynahate", "test.jsonl") if r["text"] not in seen]


def ethos() -> list[Example]:
    """ETHOS binary: YouTube and Reddit comments, hate if at least half the annotators said so."""
    return [Example(clean(r["comment"]), int(float(r["isHate"]) >= 0.5), "hate" if float(r["isHate"]) >= 0.5
                    else "") for r in _rows("ethos", "original", "Ethos_Dataset_Binary.csv", delimiter=";")]


def conan() -> list[Example]:
    """Multitarget-CONAN: hateful statements about groups (label 1) and the counter-narratives written by NGO
    operators to answer them (label 0: text that discusses a group and its stereotypes without hate).
    Measure only: its licence allows research use and no redistribution."""
    out = []
    for r in _rows("conan", "original", "Multitarget-CONAN.csv"):
        out.append(Example(r["HATE_SPEECH"].strip(), 1, "hate:" + r["TARGET"]))
        out.append(Example(r["COUNTER_NARRATIVE"].strip(), 0, "counter:" + r["TARGET"]))
    return out


def hatecheck() -> list[Example]:
    """HateCheck's functional tests; kind = the functionality (e.g. derog_impl_h, counter_quote_nh)."""
    return [Example(r["test_case"].strip(), int(r["label_gold"] == "hateful"), r["functionality"])
            for r in _rows("hatecheck", "test_suite_cases.csv")]


def ghc_test() -> list[Example]:
    """The Gab Hate Corpus test file: Gab posts coded for hate (assault on human dignity, call for violence) and
    vulgarity; harmful = any of the three. Measure only. Most of its posts that are not hateful still talk about
    groups, politics and religion, which the other social-media sets have less of."""
    out = []
    for r in _rows("ghc", "original", "ghc_test.tsv", delimiter="\t"):
        hate, vulgar = r["hd"] == "1" or r["cv"] == "1", r["vo"] == "1"
        text = clean(r["text"])
        if text:
            out.append(Example(text, int(hate or vulgar), "hate" if hate else "vulgar" if vulgar else ""))
    return out


# --- Chinese offensive language ----------------------------------------------------------------------------------
COLD_DEV_PARTS = {"tune": 0.5, "report": 0.5}


def cold(split: str) -> list[Example]:
    """COLD ``train``, or the ``tune`` / ``report`` half of its dev split (its test split is never read)."""
    if split == "train":
        rows = _rows("cold", "train.csv")
    else:
        rows = (r for r in _rows("cold", "dev.csv") if split_of("cold:" + r[""], COLD_DEV_PARTS) == split)
    return [Example(r["TEXT"].strip(), int(r["label"]), r["topic"]) for r in rows]


def toxicn() -> list[Example]:
    """ToxiCN's test file (Zhihu and Tieba comments): toxic or not; kind 1 = general offensive language, 2 = hate.
    Measure only: its licence (CC BY-NC-ND 4.0) allows no derived model."""
    with _path("toxicn", "original", "test.json").open(encoding="utf-8") as fh:
        rows = json.load(fh)
    return [Example(r["content"].strip(), int(r["toxic"]), str(r["toxic_type"]) if r["toxic"] else "") for r in rows]


def chinese_profanity_list() -> list[str]:
    """The multi-character entries of a public-domain Chinese profanity list (censor-text/profanity-list):
    COLD holds few insults between users, so these go into the Chinese training set as short positives."""
    with _path("profanity_list", "original", "zh.txt").open(encoding="utf-8") as fh:
        return [w.strip() for w in fh if len(w.strip()) >= 2]


# --- ordinary text: negatives for training, and what must not be flagged -------------------------------------
SHAREGPT_PARTS = {"train": 0.5, "test": 0.5}
ARENA_PARTS = {"train": 0.5, "test": 0.5}


def sharegpt(split: str, role: str) -> list[str]:
    """Real users' (``human``) or ChatGPT's (``gpt``) turns of the ShareGPT sample, half of the conversations."""
    return [t["value"] for r in _jsonl("en_conversations", "sharegpt_sample", "sharegpt_sample.jsonl")
            if split_of("sharegpt:" + r["id"], SHAREGPT_PARTS) == split
            for t in r["conversations"] if t["from"] == role and t["value"].strip()]


def english_benign(name: str) -> list[str]:
    """Ordinary English prompts, instructions and answers written by people (or, for ``sharegpt_gpt``, answers
    users chose to share). Sets whose authors ask not to train on them (self-instruct, Koala) are measure-only."""
    base = ("en_instructions",)
    if name == "self_instruct":
        out = []
        for r in _jsonl(*base, "self_instruct_user_oriented", "user_oriented_instructions.jsonl"):
            out.append(r["instruction"])
            for inst in r["instances"]:
                out += [t for t in (inst["input"], inst["output"]) if t.strip()]
        return out
    if name == "koala":
        return [r["prompt"] for r in _jsonl(*base, "koala_test_set", "koala_test_set.jsonl")]
    if name == "mt_bench":
        return [t for r in _jsonl(*base, "mt_bench", "question.jsonl") for t in r["turns"]]
    if name in ("oasst_250", "oasst_100"):
        file = {"oasst_250": "prompt_lottery_en_250_text.jsonl", "oasst_100": "en_100_text.jsonl"}[name]
        return list(_jsonl(*base, "oasst_prompts", file))
    if name.startswith("arena_"):
        split = name.removeprefix("arena_")
        return [t["content"] for r in _jsonl(*base, "arena_hard_prompts", "arena_hard_prompts.jsonl")
                if split_of("arena:" + r["question_id"], ARENA_PARTS) == split for t in r["turns"]]
    if name.startswith("sharegpt_"):
        role, split = name.removeprefix("sharegpt_").split("_")
        return sharegpt(split, role)
    raise KeyError(name)


ENGLISH_BENIGN_TRAIN = ("sharegpt_human_train", "sharegpt_gpt_train", "oasst_250", "arena_train")
ENGLISH_BENIGN_TEST = ("sharegpt_human_test", "sharegpt_gpt_test", "self_instruct", "koala", "mt_bench", "oasst_100",
                       "arena_test")


def _tsv_sentences(*parts: str) -> list[str]:
    with _path(*parts).open(encoding="utf-8") as fh:
        return sorted({s.strip("\x08 ") for line in fh for s in line.rstrip("\n").split("\t")[:2] if s.strip("\x08 ")})


def chinese_benign(name: str) -> list[str]:
    """Ordinary Chinese dialogue turns and questions written by people, patients' questions and doctors'
    answers (medical: symptoms such as 恶心 "nausea" read as the insult "disgusting"), and Wikipedia paragraphs
    with the questions people asked about them (wiki: wars, crimes, deaths and derogatory terms told as facts,
    the way long answers tell them). The wiki train half gives sentences, which the models score; its test half
    whole paragraphs, flagged when any sentence is, as an answer is."""
    if name in ("crosswoz_val", "crosswoz_test"):
        return [r["text"] for r in _jsonl("zh_dialogue", "crosswoz", name.split("_")[1] + ".turns.jsonl")]
    if name in ("kdconv_dev", "kdconv_test"):
        return [r["text"] for r in _jsonl("zh_dialogue", "kdconv", name.split("_")[1] + ".turns.jsonl")]
    if name in ("lccc_train", "lccc_valid"):
        return [r["text"] for r in _jsonl("zh_dialogue", "lccc_cdial_toy", name.split("_")[1] + ".turns.jsonl")]
    if name in ("jddc_train", "jddc_test"):
        split = name.split("_")[1]
        with _path("zh_dialogue", "jddc_extract", f"{split}.dec").open(encoding="utf-8") as fh:
            return [line.strip().rstrip(",") for line in fh if line.strip()]
    if name in ("lcqmc_dev", "lcqmc_test", "bq_dev", "bq_test"):
        corpus, split = name.split("_")
        folder = {"lcqmc": ("lcqmc", "dev.tsv"), "bq": ("bq_corpus", "dev.tsv")}[corpus][0]
        return _tsv_sentences("zh_questions", folder, f"{split}.tsv")
    if name in ("medical_train", "medical_test"):
        rows = _jsonl("zh_dialogue", "medical", name.split("_")[1] + ".jsonl")
        return [text for r in rows for text in (r["ask"], r["answer"]) if text.strip()]
    if name in ("wiki_train", "wiki_test"):
        rows = list(_jsonl("zh_wiki", name.split("_")[1] + ".jsonl"))
        paragraphs = [r["context"] for r in rows]
        if name == "wiki_train":
            paragraphs = [s for text in paragraphs for s in sentences(text)]
        return paragraphs + [q for r in rows for q in r["questions"] if q.strip()]
    if name == "oppo":
        return _tsv_sentences("zh_questions", "oppo_xiaobu", "dev.tsv")
    raise KeyError(name)


CHINESE_BENIGN_TRAIN = ("crosswoz_val", "kdconv_dev", "lccc_train", "jddc_train", "lcqmc_dev", "bq_dev",
                        "medical_train")
# Drawn apart from the pool above (``hap_train.CHINESE_WIKI_TEXTS``), so that adding it changes no other draw.
CHINESE_FACTUAL_TRAIN = ("wiki_train",)
CHINESE_BENIGN_TEST = ("crosswoz_test", "kdconv_test", "lccc_valid", "jddc_test", "lcqmc_test", "bq_test", "oppo",
                       "medical_test", "wiki_test")

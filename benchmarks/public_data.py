#!/usr/bin/env python3
"""Rebuild the public data sets that the benchmarks and the HAP models read (default /work/data).

The data is written by others and not committed here. This script rebuilds it from git snapshots of the
repositories that publish it: each snapshot is a git directory ``<mirror>/<owner>+<name>/repo`` (a bare clone,
or a clone with its ``.git``). Every file is read at the commit benchmarks/DATA.md records, so that a rebuild
gives the same bytes the published figures were measured on; DATA.md also gives each set's licence, the
conversion and which split is developed on and which only reported.

    python benchmarks/public_data.py [--mirror /work/.mirror] [--out /work/data]
                                     [--groups en_pii,en_ordinary,zh_ner,zh_dialogue,hap]

A missing snapshot (or a file it lacks) skips that output and names the repository to fetch; the exit status
is then 1. Standard library only, so it runs before the project is installed.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

# The commit each source was built from (benchmarks/DATA.md).
COMMITS = {
    "AmbientMeta/ambientmeta-pii-detection-benchmark": "6710e3be1f49b976b859ad0a82d149c7eb857329",
    "NguyenHoangAn0511/Name-entity-recognition-using-BERT": "f07853e9581e4f7b6a61e96f235a337ba085f769",
    "leondz/emerging_entities_17": "e52a2d2a71ac1a051ca2d532eef28653c5c02603",
    "google-research-datasets/dstc8-schema-guided-dialogue": "e852981ae34990f4358979625854259302feaa78",
    "Marugannwg/ShareGPT92k_user_linguistic_mining": "8186064b06829a39494e941fb7a83f66b2228cd8",
    "lmarena/arena-hard-auto": "196f6b826783b3da7310e361a805fa36f0be83f3",
    "arnav-gudibande/koala-test-set": "2d4396aee3cff495382e9b0ad2521d70b177763b",
    "lm-sys/FastChat": "0e6d3e4beaab66f4d3f93db72541a4abab8af28d",
    "LAION-AI/Open-Assistant": "f1e6ed9526f5817531f3ab85441a40b3671ddccb",
    "yizhongw/self-instruct": "0b26ccaa415992100fa32df62d41b994cf928e23",
    "StanleySun233/ChineseNER": "dc3c5cd2479fc3ef63ceb1c93db9b351508e974f",
    "hltcoe/golden-horse": "7a73c08e45ed94312af4ef2d97cc35a47d029e99",
    "lemonhu/NER-BERT-pytorch": "5f7577b78020dc5867cc3a4dbb7a2db44bae1fc8",
    "zjy-ucas/ChineseNER": "48e1007e60194c13377f8ce612c505d484b18c7d",
    "thu-coai/CrossWOZ": "df82c9fdff91b9b130f2d6b89110d3870ba6260e",
    "thu-coai/CDial-GPT": "81064865221d3503251d633f3d0b651004c938a6",
    "thu-coai/KdConv": "653db76432de09a004ba708a68f8bbd5500e6bec",
    "SimonJYang/JDDC-Baseline-Seq2Seq": "cbc12bdadd91277b09f0455b9f5c57e5b8c13462",
    "IceFlameWorm/NLP_Datasets": "a2203a7361b6386dd8d8b64f5d600aa1ec730d0d",
    "yongxinliao-hqu/2021_CCF_BDCI": "2f7fd20d417793a4017372c6fc315380ccda82e4",
    "leodotnet/neural-chinese-address-parsing": "54cf6bde941a152cc096f54294254fc4ee288fa7",
    "wenliangdai/multi-task-offensive-language-detection": "6c2071a677e7380c026b2bd59338370f9807e1da",
    "aspenywang/Implicit-Hate": "728402165565a00ced05e9509f24b25e2856d0ac",
    "punyajoy/HateXplain": "daa7955afbe796b00e79817f16621469a38820e0",
    # Not HEAD: the per-post texts (Model_Eval/docs/) are gone from later commits.
    "ritwikmishra/hateXplain-metrics-calculation": "fd87b0314c202b5998b1fe540f458d09a3995f25",
    "Media-Bias-Group/MBIB": "b9a887ffd461fa462e89835fc27b36e370091954",
    "intelligence-csd-auth-gr/Ethos-Hate-Speech-Dataset": "705258e118ce9611ebbd5ab2a4841b0066547293",
    "marcoguerini/CONAN": "627faf12d73ee75291d0c99a1dffd54c811a93cb",
    "paul-rottger/hatecheck-data": "d84302298ceeb34f4b0dde2d8a1f4932c2caa612",
    "liuchaoqun/hate-speech-datasets": "98f3ee8104cf87bb91ed3e64c31a3097b9f8de84",
    "thu-coai/COLDataset": "a0c55a945497ab58e94aef491180e1cf88ffb864",
    "DUT-lujunyu/ToxiCN": "16a315104af85a2a751705e4a41c8dc515e4c578",
    "censor-text/profanity-list": "fe2e5b55130f7f387c42f88695cd9e488302715c",
    "Toyhom/Chinese-medical-dialogue-data": "26724a4357fcd142f0cab81188cacf1a2dd8a827",
    "ymcui/cmrc2018": "c0eb1b6ba219847457e6af3180da722bbeb656af",
    "DRCKnowledgeTeam/DRCD": "b944790de5af02c5fbb7cd9cb1473d27d169eebf",
    "ecanbazer/DynBERT": "494d0d3930649aaba876a5328c329ed051e17912",
}


class MissingSource(Exception):
    """A snapshot, commit or file that is not on this machine: the output that needs it is skipped."""


class Snapshots:
    """The git snapshots under one mirror folder, each read at its commit in ``COMMITS``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._git_dirs: dict[str, Path] = {}

    def git_dir(self, repo: str) -> Path:
        if repo not in self._git_dirs:
            base = self.root / repo.replace("/", "+") / "repo"
            git_dir = base / ".git" if (base / ".git").is_dir() else base
            if not git_dir.is_dir():
                raise MissingSource(f"no snapshot of {repo}: fetch github:{repo} into {base} "
                                    f"(or: git clone --bare https://github.com/{repo}.git {base})")
            has_commit = subprocess.run(["git", "--git-dir", str(git_dir), "cat-file", "-e",
                                         f"{COMMITS[repo]}^{{commit}}"], capture_output=True).returncode == 0
            if not has_commit:
                raise MissingSource(f"the snapshot of {repo} lacks commit {COMMITS[repo]}: "
                                    f"fetch github:{repo} again")
            self._git_dirs[repo] = git_dir
        return self._git_dirs[repo]

    def _git(self, repo: str, *args: str, stdin: bytes | None = None) -> bytes:
        return subprocess.run(["git", "--git-dir", str(self.git_dir(repo)), *args], input=stdin, check=True,
                              capture_output=True).stdout

    def paths(self, repo: str, folder: str) -> list[str]:
        """Every file under ``folder``."""
        listing = self._git(repo, "ls-tree", "-r", "-z", "--name-only", COMMITS[repo], "--", folder)
        return [path for path in listing.decode("utf-8").split("\0") if path]

    def read_many(self, repo: str, paths: Iterable[str]) -> dict[str, bytes | None]:
        """The bytes of each path, None where the snapshot lacks it (snapshots leave out files of 4 MiB or
        more); one ``git cat-file --batch`` for all of them, as some outputs gather thousands of files."""
        paths = list(paths)
        request = "".join(f"{COMMITS[repo]}:{path}\n" for path in paths).encode("utf-8")
        stream = io.BytesIO(self._git(repo, "cat-file", "--batch", stdin=request))
        contents: dict[str, bytes | None] = {}
        for path in paths:
            header = stream.readline().split()
            if header[-1] == b"missing":
                contents[path] = None
                continue
            contents[path] = stream.read(int(header[2]))
            stream.read(1)  # the newline after each object
        return contents

    def read_all(self, repo: str, paths: Iterable[str]) -> dict[str, bytes]:
        """Like ``read_many``, for outputs that are wrong without every one of the files."""
        contents = self.read_many(repo, paths)
        if lacking := [path for path, data in contents.items() if data is None]:
            raise MissingSource(f"the snapshot of {repo} lacks {lacking[0]}"
                                + (f" and {len(lacking) - 1} more" if len(lacking) > 1 else "")
                                + " (snapshots leave out files of 4 MiB or more)")
        return {path: data for path, data in contents.items() if data is not None}

    def read(self, repo: str, path: str) -> bytes:
        return self.read_all(repo, [path])[path]

    def text(self, repo: str, path: str) -> str:
        return self.read(repo, path).decode("utf-8-sig")


class Output:
    """The output folder; says what each write put there."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, rel: str, data: bytes) -> None:
        self._put(rel, data)
        lines = data.count(b"\n")
        print(f"  {rel}: {lines:,} lines, {len(data):,} bytes")

    def write_many(self, folder: str, files: dict[str, bytes]) -> None:
        for rel, data in files.items():
            self._put(rel, data)
        print(f"  {folder}: {len(files)} files, {sum(map(len, files.values())):,} bytes")

    def _put(self, rel: str, data: bytes) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


Build = Callable[[Snapshots, Output], None]


def text_lines(lines: Iterable[str]) -> bytes:
    return "".join(line + "\n" for line in lines).encode("utf-8")


def jsonl(rows: Iterable[object], compact: bool = False) -> bytes:
    separators = (",", ":") if compact else None
    return text_lines(json.dumps(row, ensure_ascii=False, separators=separators) for row in rows)


def tsv(rows: Iterable[list[str]]) -> bytes:
    """Sentence pairs as ``s1\\ts2\\tlabel`` lines, the layout the question-pair loaders split on tabs."""
    rows = list(rows)
    for row in rows:
        if len(row) != 3 or any("\t" in cell or "\n" in cell for cell in row):
            raise ValueError(f"not a sentence pair with a label: {row!r}")
    return text_lines("\t".join(row) for row in rows)


def nonblank_lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.strip()]


def tab_separated(text: str) -> list[list[str]]:
    return [line.rstrip("\r").split("\t") for line in nonblank_lines(text)]


def conll_sentences(text: str) -> list[list[str]]:
    """The lines of a one-token-a-line file, grouped into sentences; a blank line (in WNUT-17 train, a line
    holding only a tab) ends one."""
    sentences, current = [], []
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if line.strip():
            current.append(line)
        elif current:
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    return sentences


def first_and_last_column(line: str, separator: str | None = None) -> tuple[str, str]:
    """A token and its tag on a CoNLL-style line: the first and the last column."""
    columns = line.split(separator)
    return columns[0], columns[-1].strip()


def bio_row(tokens: list[str], tags: list[str], joiner: str) -> dict:
    """Tokens and their BIO tags -> ``{"text", "spans": [{"start", "end", "label"}]}``: text is the tokens
    joined by ``joiner``, offsets are code points, end exclusive. An I- tag that does not continue a span of
    its own type opens a new one, as conlleval reads it (14 times, all in Weibo NER)."""
    spans: list[dict] = []
    current, offset = None, 0
    for token, tag in zip(tokens, tags, strict=True):
        start, end = offset, offset + len(token)
        offset = end + len(joiner)
        if tag == "O":
            current = None
            continue
        prefix, _, label = tag.partition("-")
        if prefix not in ("B", "I") or not label:
            raise ValueError(f"not a BIO tag: {tag!r}")
        if prefix == "I" and current is not None and current["label"] == label:
            current["end"] = end
        else:
            current = {"start": start, "end": end, "label": label}
            spans.append(current)
    return {"text": joiner.join(tokens), "spans": spans}


def conll_rows(text: str, token_and_tag: Callable[[str], tuple[str, str]], joiner: str) -> list[dict]:
    rows = []
    for sentence in conll_sentences(text):
        pairs = [token_and_tag(line) for line in sentence]
        rows.append(bio_row([token for token, _ in pairs], [tag for _, tag in pairs], joiner))
    return rows


def copies(files: list[tuple[str, str, str]]) -> Build:
    """An output made of files copied byte for byte: (output path, repository, path in the repository)."""
    def build(src: Snapshots, out: Output) -> None:
        for rel, repo, path in files:
            out.write(rel, src.read(repo, path))
    return build


# --- en_pii -------------------------------------------------------------------------------------------------

def ambientmeta(src: Snapshots, out: Output) -> None:
    """The AmbientMeta PII benchmark's data/<part>/*.jsonl as they are (its metadata.json files go unread)."""
    repo = "AmbientMeta/ambientmeta-pii-detection-benchmark"
    wanted = [path for path in src.paths(repo, "data") if path.count("/") == 2 and path.endswith(".jsonl")]
    files = {f"pii_en_ambientmeta/{path}": data for path, data in src.read_all(repo, wanted).items()}
    out.write_many("pii_en_ambientmeta/data", files)


def conll2003(src: Snapshots, out: Output) -> None:
    """CoNLL-2003 English (eng.train / testa / testb; IOB2, four space-separated columns): a sentence's tokens
    joined by spaces, the last column's tags as PER / ORG / LOC / MISC spans."""
    repo = "NguyenHoangAn0511/Name-entity-recognition-using-BERT"
    for split, name in (("train", "eng.train"), ("dev", "eng.testa"), ("test", "eng.testb")):
        rows = conll_rows(src.text(repo, f"conll2003/{name}"), first_and_last_column, " ")
        out.write(f"conll2003/{split}.jsonl", jsonl(rows))


def wnut17(src: Snapshots, out: Output) -> None:
    """WNUT-17 (token TAB tag), converted like CoNLL-2003; labels person, location, corporation, product,
    creative-work, group."""
    repo = "leondz/emerging_entities_17"
    for split, name in (("train", "wnut17train.conll"), ("dev", "emerging.dev.conll"),
                        ("test", "emerging.test.annotated")):
        rows = conll_rows(src.text(repo, name), partial(first_and_last_column, separator="\t"), " ")
        out.write(f"wnut17/{split}.jsonl", jsonl(rows))


def sgd(src: Snapshots, out: Output) -> None:
    """Schema-Guided Dialogue dialogues_*.json as they are: the files the snapshot holds (it lacks those of
    4 MiB or more; a full clone has them all)."""
    repo = "google-research-datasets/dstc8-schema-guided-dialogue"
    for split in ("train", "dev", "test"):
        dialogues = re.compile(rf"{split}/dialogues_\d+\.json")
        found = src.read_many(repo, filter(dialogues.fullmatch, src.paths(repo, split)))
        files = {f"sgd/{path}": data for path, data in found.items() if data is not None}
        out.write_many(f"sgd/{split}", files)
        if lacking := [Path(path).name for path, data in found.items() if data is None]:
            print(f"    the snapshot lacks {len(lacking)} of them: {' '.join(lacking)}")


# --- en_ordinary --------------------------------------------------------------------------------------------

def sharegpt_sample(src: Snapshots, out: Output) -> None:
    """1,000 ShareGPT conversations (the repository's seed-42 sample, one JSON file each) in its own order:
    id and the turns' from / value, the enrichment keys dropped."""
    repo = "Marugannwg/ShareGPT92k_user_linguistic_mining"
    order = json.loads(src.read(repo, "sampled_enriched_data/sampling_metadata.json"))["sampled_files"]
    rows = []
    for data in src.read_all(repo, (f"sampled_enriched_data/{name}" for name in order)).values():
        conversation = json.loads(data)
        turns = [{"from": turn["from"], "value": turn["value"]} for turn in conversation["conversations"]]
        rows.append({"id": conversation["id"], "conversations": turns})
    out.write("en_conversations/sharegpt_sample/sharegpt_sample.jsonl", jsonl(rows))


def arena_hard(src: Snapshots, out: Output) -> None:
    """Arena-Hard v0.1's 500 prompts in the layout the loaders read, that of the file before the repository's
    "reformat v0.1" commit: {question_id, category, cluster, turns: [{content}]}."""
    text = src.text("lmarena/arena-hard-auto", "data/arena-hard-v0.1/question.jsonl")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    rows = [{"question_id": row["uid"], "category": row["category"], "cluster": row["cluster"],
             "turns": [{"content": row["prompt"]}]} for row in rows]
    out.write("en_instructions/arena_hard_prompts/arena_hard_prompts.jsonl", jsonl(rows, compact=True))


EN_INSTRUCTION_COPIES = [
    ("en_instructions/koala_test_set/koala_test_set.jsonl", "arnav-gudibande/koala-test-set",
     "koala_test_set.jsonl"),
    ("en_instructions/mt_bench/question.jsonl", "lm-sys/FastChat",
     "fastchat/llm_judge/data/mt_bench/question.jsonl"),
    ("en_instructions/oasst_prompts/en_100_text.jsonl", "LAION-AI/Open-Assistant",
     "model/model_eval/manual/data/en_100_text.jsonl"),
    ("en_instructions/oasst_prompts/prompt_lottery_en_250_text.jsonl", "LAION-AI/Open-Assistant",
     "model/model_eval/manual/data/prompt_lottery_en_250_text.jsonl"),
    ("en_instructions/self_instruct_user_oriented/user_oriented_instructions.jsonl", "yizhongw/self-instruct",
     "human_eval/user_oriented_instructions.jsonl"),
]


# --- zh_ner -------------------------------------------------------------------------------------------------

def cluener2020(src: Snapshots, out: Output) -> None:
    """CLUENER2020 train / dev: the copy in StanleySun233/ChineseNER is pretty-printed; each record is written
    back as one compact line, the released format."""
    decoder, space = json.JSONDecoder(), re.compile(r"\s*")
    for split in ("train", "dev"):
        text, records, at = src.text("StanleySun233/ChineseNER", f"data/cluener/{split}.json"), [], 0
        while (at := space.match(text, at).end()) < len(text):
            record, at = decoder.raw_decode(text, at)
            records.append(record)
        out.write(f"cluener2020/{split}.json", jsonl(records))


def weibo_token(line: str) -> tuple[str, str]:
    """``李0\\tB-PER.NAM``: the character with its word-position digits removed, and the tag."""
    token, tag = line.split("\t")
    match = re.fullmatch(r"(.+?)(\d+)", token, re.S)
    if match is None:
        raise ValueError(f"no word-position digits: {line!r}")
    return match.group(1), tag


def weibo_ner(src: Snapshots, out: Output) -> None:
    """Weibo NER, the revised (2nd) annotation: characters joined, BIO tags as spans (PER.NAM, LOC.NOM ...).
    The source writes one token as two U+FFFD characters; it is kept."""
    for split in ("train", "dev", "test"):
        text = src.text("hltcoe/golden-horse", f"data/weiboNER_2nd_conll.{split}")
        out.write(f"weibo_ner/{split}.jsonl", jsonl(conll_rows(text, weibo_token, "")))


def msra_ner(src: Snapshots, out: Output) -> None:
    """MSRA NER val (3,000 sentences of the original train file) and test: a line of space-separated
    characters and a line of their tags per sentence -> PER / LOC / ORG spans."""
    repo = "lemonhu/NER-BERT-pytorch"
    for split in ("val", "test"):
        sentences, tags = (nonblank_lines(src.text(repo, f"data/msra/{split}/{name}.txt"))
                           for name in ("sentences", "tags"))
        rows = [bio_row(chars.split(" "), labels.split(" "), "")
                for chars, labels in zip(sentences, tags, strict=True)]
        out.write(f"msra_ner/{split}.jsonl", jsonl(rows))


def peoples_daily_ner(src: Snapshots, out: Output) -> None:
    """People's Daily 1998 NER dev / test ("char tag" a line) -> PER / LOC / ORG spans."""
    for split in ("dev", "test"):
        text = src.text("zjy-ucas/ChineseNER", f"data/example.{split}")
        rows = conll_rows(text, partial(first_and_last_column, separator=" "), "")
        out.write(f"peoples_daily_ner/{split}.jsonl", jsonl(rows))


# --- zh_dialogue --------------------------------------------------------------------------------------------

def crosswoz(src: Snapshots, out: Output) -> None:
    """CrossWOZ val / test (zipped JSON): one row per message {dialog_id, turn, role, text, dialog_act}."""
    for split in ("val", "test"):
        archive = src.read("thu-coai/CrossWOZ", f"data/crosswoz/{split}.json.zip")
        dialogs = json.loads(zipfile.ZipFile(io.BytesIO(archive)).read(f"{split}.json").decode("utf-8"))
        rows = [{"dialog_id": dialog_id, "turn": turn, "role": message["role"], "text": message["content"],
                 "dialog_act": message["dialog_act"]}
                for dialog_id, dialog in dialogs.items() for turn, message in enumerate(dialog["messages"])]
        out.write(f"zh_dialogue/crosswoz/{split}.turns.jsonl", jsonl(rows))


def lccc_toy(src: Snapshots, out: Output) -> None:
    """CDial-GPT's LCCC toy files: a line per dialogue, utterances split by tabs; every space is removed (the
    source spaces out each character, and Latin words letter by letter)."""
    for split in ("train", "valid"):
        rows = []
        for number, line in enumerate(src.text("thu-coai/CDial-GPT", f"data/toy_{split}.txt").splitlines()):
            for turn, utterance in enumerate(line.split("\t")):
                if utterance := "".join(utterance.split()):
                    rows.append({"dialog_id": f"lccc-{split}-{number}", "turn": turn, "text": utterance})
        out.write(f"zh_dialogue/lccc_cdial_toy/{split}.turns.jsonl", jsonl(rows))


def kdconv(src: Snapshots, out: Output) -> None:
    """KdConv dev / test: one row per message {dialog_id, domain, turn, text}, film then music then travel."""
    for split in ("dev", "test"):
        rows = []
        for domain in ("film", "music", "travel"):
            dialogs = json.loads(src.text("thu-coai/KdConv", f"data/{domain}/{split}.json"))
            for number, dialog in enumerate(dialogs):
                for turn, message in enumerate(dialog["messages"]):
                    if text := message["message"].strip():
                        rows.append({"dialog_id": f"kdconv-{domain}-{split}-{number}", "domain": domain,
                                     "turn": turn, "text": text})
        out.write(f"zh_dialogue/kdconv/{split}.turns.jsonl", jsonl(rows))


def jddc_extract(src: Snapshots, out: Output) -> None:
    """The JDDC baseline's pairs: .dec (the service reply) as it is; of each .enc line (the Q,A,Q,A,Q context,
    each utterance followed by a comma) the trailing comma is dropped, so that ``enc.split(",")[-1]`` is the
    customer's last turn."""
    for split in ("train", "test"):
        enc, dec = (src.text("SimonJYang/JDDC-Baseline-Seq2Seq", f"data/{split}.{kind}").removesuffix("\n")
                    .split("\n") for kind in ("enc", "dec"))
        if len(enc) != len(dec):
            raise ValueError(f"JDDC {split}: {len(enc)} contexts but {len(dec)} replies")
        out.write(f"zh_dialogue/jddc_extract/{split}.enc", text_lines(line.removesuffix(",") for line in enc))
        out.write(f"zh_dialogue/jddc_extract/{split}.dec", text_lines(dec))


def medical_dialogue(src: Snapshots, out: Output) -> None:
    """The internal-medicine sample of a Chinese medical Q&A corpus (its one CSV small enough to be in the
    snapshot; GB18030): one row per pair {department, title, ask, answer}, split in halves by sha1 of the title and
    question: train (ordinary text the Chinese HAP models learn from) and test (measured only)."""
    text = src.read("Toyhom/Chinese-medical-dialogue-data", "样例_内科5000-6000.csv").decode("gb18030")
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames != ["department", "title", "ask", "answer"]:
        raise ValueError(f"medical dialogue: unexpected header {reader.fieldnames}")
    halves: dict[str, list[dict]] = {"train": [], "test": []}
    for row in reader:
        key = hashlib.sha1(f"{row['title']}\x1f{row['ask']}".encode()).digest()[0] % 2
        halves["test" if key else "train"].append(row)
    for split, rows in halves.items():
        out.write(f"zh_dialogue/medical/{split}.jsonl", jsonl(rows))


def wikipedia_paragraphs(src: Snapshots, out: Output) -> None:
    """Chinese Wikipedia paragraphs and the questions people wrote about them, from two reading-comprehension
    sets (CMRC 2018 trial + dev, Simplified; DRCD dev + test, Traditional; both CC BY-SA; their train files are
    not in the snapshots): one row per paragraph {source, article, context, questions}, split in halves by sha1
    of the article's id, so that no article is in both: train (ordinary text the Chinese HAP models learn
    from) and test (measured only)."""
    files = [("ymcui/cmrc2018", f"squad-style-data/cmrc2018_{split}.json") for split in ("trial", "dev")]
    files += [("DRCKnowledgeTeam/DRCD", f"DRCD_{split}.json") for split in ("dev", "test")]
    halves: dict[str, list[dict]] = {"train": [], "test": []}
    for repo, path in files:
        for article in json.loads(src.text(repo, path))["data"]:
            for paragraph in article["paragraphs"]:
                # DRCD numbers paragraphs "<article>-<n>" and keeps no article id of its own.
                name = f"{repo}/{article.get('id') or paragraph['id'].split('-')[0]}"
                key = hashlib.sha1(name.encode()).digest()[0] % 2
                halves["test" if key else "train"].append({
                    "source": repo, "article": name, "context": paragraph["context"],
                    "questions": [qa["question"] for qa in paragraph["qas"]]})
    for split, rows in halves.items():
        out.write(f"zh_wiki/{split}.jsonl", jsonl(rows))


def bq_corpus(src: Snapshots, out: Output) -> None:
    """BQ corpus dev / test: the CSV (header sentence1,sentence2,label) as tab-separated pairs."""
    for split in ("dev", "test"):
        reader = csv.reader(io.StringIO(src.text("IceFlameWorm/NLP_Datasets", f"BQ_corpus/{split}.csv")))
        if (header := next(reader)) != ["sentence1", "sentence2", "label"]:
            raise ValueError(f"BQ {split}: unexpected header {header}")
        out.write(f"zh_questions/bq_corpus/{split}.tsv", tsv(row for row in reader if row))


def lcqmc(src: Snapshots, out: Output) -> None:
    """LCQMC dev / test, already tab-separated pairs."""
    for split in ("dev", "test"):
        text = src.text("IceFlameWorm/NLP_Datasets", f"LCQMC/{split}.txt")
        out.write(f"zh_questions/lcqmc/{split}.tsv", tsv(tab_separated(text)))


def oppo_xiaobu(src: Snapshots, out: Output) -> None:
    """OPPO 小布 pairs, already tab-separated: a 20 % hold-out of the official train + dev, not the official
    dev file."""
    text = src.text("yongxinliao-hqu/2021_CCF_BDCI", "work/oppo_dev_2.txt")
    out.write("zh_questions/oppo_xiaobu/dev.tsv", tsv(tab_separated(text)))


# --- hap ----------------------------------------------------------------------------------------------------

# MBIB's category column: the majority of HateXplain's annotators ("3", undecided, is in no split).
HATEXPLAIN_LABELS = {"0": "normal", "1": "hatespeech", "2": "offensive"}


def hatexplain(src: Snapshots, out: Output) -> None:
    """HateXplain val / test, rebuilt because its dataset.json (over 4 MiB) is in no snapshot: one row per
    post of the official split {post_id, text, majority_label}; the text from the ERASER-format docs of
    ritwikmishra/hateXplain-metrics-calculation (the post's tokens joined by spaces), the label from MBIB's
    dump of dataset.json."""
    divisions = json.loads(src.read("punyajoy/HateXplain", "Data/post_id_divisions.json"))
    dump = src.text("Media-Bias-Group/MBIB", "datasets/092_HateXplain/092-HateXplain.csv")
    category = {row[""]: row["category"] for row in csv.DictReader(io.StringIO(dump))}
    for split in ("val", "test"):
        docs = src.read_all("ritwikmishra/hateXplain-metrics-calculation",
                            (f"Model_Eval/docs/{post_id}" for post_id in divisions[split]))
        rows = [{"post_id": post_id, "text": docs[f"Model_Eval/docs/{post_id}"].decode("utf-8").strip(),
                 "majority_label": HATEXPLAIN_LABELS[category[post_id]]} for post_id in divisions[split]]
        out.write(f"hatexplain/{split}.jsonl", jsonl(rows))


def dynahate_line(line: str) -> str:
    """One text of DynBERT's files: bare, or CSV-quoted when it holds a double quote (commas stay unquoted)."""
    if len(line) > 1 and line.startswith('"') and line.endswith('"'):
        return line[1:-1].replace('""', '"')
    return line


def dynahate(src: Snapshots, out: Output) -> None:
    """The Dynamically Generated Hate Speech dataset (Vidgen et al. 2021) as DynBERT's copy holds it: the texts of
    its train and test splits one a line, the hate (1) / nothate (0) labels one a line beside them (the original
    CSV, over 4 MiB, is in no snapshot). A row per entry ``{text, label}``."""
    repo = "ecanbazer/DynBERT"
    for split, name in (("train", "Train"), ("test", "Test")):
        texts = src.text(repo, f"data/{name}.csv").split("\n")
        labels = src.text(repo, f"data/{name}_label.csv").split("\n")
        if len(texts) != len(labels):
            raise MissingSource(f"{repo}: data/{name}.csv and its labels differ in length")
        rows = [{"text": dynahate_line(text), "label": int(label)} for text, label in zip(texts, labels, strict=True)
                if text.strip()]
        out.write(f"dynahate/{split}.jsonl", jsonl(rows))


OLID = "wenliangdai/multi-task-offensive-language-detection"

GROUPS: dict[str, dict[str, Build]] = {
    "en_pii": {"pii_en_ambientmeta": ambientmeta, "conll2003": conll2003, "wnut17": wnut17, "sgd": sgd},
    "en_ordinary": {
        "en_conversations/sharegpt_sample": sharegpt_sample,
        "en_instructions/arena_hard_prompts": arena_hard,
        "en_instructions (the other prompt sets)": copies(EN_INSTRUCTION_COPIES),
    },
    "zh_ner": {"cluener2020": cluener2020, "weibo_ner": weibo_ner, "msra_ner": msra_ner,
               "peoples_daily_ner": peoples_daily_ner},
    "zh_dialogue": {
        "zh_dialogue/crosswoz": crosswoz,
        "zh_dialogue/lccc_cdial_toy": lccc_toy,
        "zh_dialogue/kdconv": kdconv,
        "zh_dialogue/jddc_extract": jddc_extract,
        "zh_dialogue/medical": medical_dialogue,
        "zh_wiki": wikipedia_paragraphs,
        "zh_questions/bq_corpus": bq_corpus,
        "zh_questions/lcqmc": lcqmc,
        "zh_questions/oppo_xiaobu": oppo_xiaobu,
        "zh_address": copies([(f"zh_address/{name}", "leodotnet/neural-chinese-address-parsing",
                               f"data/{name}") for name in ("train.txt", "dev.txt", "test.txt")]),
    },
    "hap": {
        "olid": copies([(f"olid/original/{name}", OLID, f"OLIDv1.0/{name}")
                        for name in ("olid-training-v1.0.tsv", "testset-levela.tsv", "labels-levela.csv")]),
        "implicit_hate": copies([("implicit_hate/original/implicit_hate_v1_stg1_posts.tsv",
                                  "aspenywang/Implicit-Hate",
                                  "implicit-hate-corpus/implicit_hate_v1_stg1_posts.tsv")]),
        "hatexplain": hatexplain,
        "dynahate": dynahate,
        "ethos": copies([("ethos/original/Ethos_Dataset_Binary.csv",
                          "intelligence-csd-auth-gr/Ethos-Hate-Speech-Dataset",
                          "ethos/ethos_data/Ethos_Dataset_Binary.csv")]),
        "conan": copies([("conan/original/Multitarget-CONAN.csv", "marcoguerini/CONAN",
                          "Multitarget-CONAN/Multitarget-CONAN.csv")]),
        "hatecheck": copies([("hatecheck/test_suite_cases.csv", "paul-rottger/hatecheck-data",
                              "test_suite_cases.csv")]),
        "ghc": copies([("ghc/original/ghc_test.tsv", "liuchaoqun/hate-speech-datasets",
                        "GabHateCorpus/Data/ghc_test.tsv")]),
        # COLD's test split is held out: never read.
        "cold": copies([(f"cold/{name}", "thu-coai/COLDataset", f"COLDataset/{name}")
                        for name in ("train.csv", "dev.csv")]),
        "toxicn": copies([("toxicn/original/test.json", "DUT-lujunyu/ToxiCN",
                           "ToxiCN_ex/ToxiCN/data/test.json")]),
        # en.txt is read by no loader: kept as the source of curation/hap_lexicon's English entries.
        "profanity_list": copies([(f"profanity_list/original/{name}", "censor-text/profanity-list",
                                   f"list/{name}") for name in ("zh.txt", "en.txt")]),
    },
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, default=Path("/work/.mirror"), help="folder of git snapshots")
    parser.add_argument("--out", type=Path, default=Path("/work/data"), help="where the data sets go")
    parser.add_argument("--groups", default=",".join(GROUPS), help="comma-separated: " + ", ".join(GROUPS))
    args = parser.parse_args()
    groups = [group for group in args.groups.split(",") if group]
    if unknown := [group for group in groups if group not in GROUPS]:
        parser.error(f"unknown group(s) {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
    src, out = Snapshots(args.mirror), Output(args.out)
    skipped = []
    for group in groups:
        print(f"{group}:")
        for name, build in GROUPS[group].items():
            try:
                build(src, out)
            except MissingSource as missing:
                print(f"  SKIPPED {name}: {missing}")
                skipped.append(f"{name}: {missing}")
    if skipped:
        # No MANIFEST.md: the benchmarks take it as the sign that the data is there.
        print(f"\nnot built ({len(skipped)}), so no MANIFEST.md written:\n  " + "\n  ".join(skipped),
              file=sys.stderr)
        return 1
    manifest = Path(__file__).with_name("DATA.md")
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(manifest, args.out / "MANIFEST.md")
    print(f"MANIFEST.md: a copy of {manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Dedup benchmark: `flywheel dedup` (CLI start-up included) vs a datasketch update() + MinHashLSH loop.

Realistic support prompts about the demo product are generated here (domain facts, Faker slots, several
independent sentence parts), then trivial variants of some of them are planted: case, spacing,
punctuation, a greeting or "thanks" added, one typo. Recall = planted variants flagged as duplicates of
their own original; precision = flags that point at the right original. Both are reported for the CLI
and for the baseline, which uses the same normalised text and shingles (only the speed differs).

    .venv/bin/python benchmarks/dedup_bench.py [--n 40000] [--variants 4000]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from faker import Faker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curation.dedup import normalise  # noqa: E402
from demo.domain import FACTS  # noqa: E402
from flywheel.settings import DedupSettings  # noqa: E402

CONTEXTS = (
    "I'm {name}, {job} at {company}.", "Writing from {city} on my {device}.", "We are {n} people at {company}.",
    "My account is {email} and I'm on {plan}.", "I moved our notes over from {app} for {company}.",
    "Context: I keep '{title}' and '{title2}' as notebooks.", "Hello from {city}, {name} here.",
)
ISSUES = (
    "My note '{title}' disappeared after syncing on my {device}.",
    "I was charged {amount} twice, the card ends in {digits}. Our company is {company}.",
    "The app crashes whenever I open the notebook '{title}'.",
    "Search doesn't find '{phrase}' even though it's in my notes.",
    "I can't log in on my {device}, it says '{phrase}'.",
    "How do I move '{title}' into a notebook shared with {name}?",
    "Can I change my billing address to {street}, {city}?",
    "Why does '{title}' show a sync conflict with '{title2}'?",
    "Is it possible to pin '{title}' above '{title2}'?",
    "I need an invoice addressed to {company}, {street}, for {month}.",
    "The tag '{word}' keeps coming back on '{title}' after I delete it.",
    "{name} from {company} cannot see '{title}' although I shared it.",
    "Templates like '{phrase}' don't load in the {device} app.",
    "Please merge my accounts {email} and {email2}.",
)
CLOSERS = ("", "", "It is urgent for our {job} team.", "Reply to {email2} please.", "Order number {order}.",
           "We rely on it for '{phrase}'.")


def realistic_prompts(n: int, seed: int = 7) -> list[str]:
    """``n`` support prompts, distinct after normalisation, each with a few high-entropy details."""
    fake, rng = Faker(), random.Random(seed)
    Faker.seed(seed)
    questions = [q for f in FACTS for q in (*f.questions, *f.dev)]
    seen, out = set(), []
    while len(out) < n:
        slots = {"plan": rng.choice(["Free", "Plus", "Team"]), "device": rng.choice(
                 ["iPhone", "iPad", "Android phone", "Windows laptop", "Mac", "Chromebook", "Pixel tablet"]),
                 "n": rng.randint(2, 400), "company": fake.company(), "email": fake.email(),
                 "email2": fake.email(), "city": fake.city(), "job": fake.job().lower(),
                 "app": rng.choice(["Evernote", "OneNote", "Notion", "Bear", "Obsidian"]),
                 "title": fake.catch_phrase(), "title2": fake.catch_phrase(), "phrase": fake.bs(),
                 "amount": f"${rng.randint(3, 99)}.99", "digits": fake.numerify("####"),
                 "word": fake.word(), "name": fake.name(), "street": fake.street_address(),
                 "month": fake.month_name(), "order": fake.bothify("LN-####-????")}
        if rng.random() < 0.3:
            parts = [rng.choice(CONTEXTS), rng.choice(questions)]
        else:
            parts = [rng.choice(CONTEXTS) if rng.random() < 0.4 else "", rng.choice(ISSUES), rng.choice(CLOSERS)]
        text = " ".join(p.format(**slots) for p in parts if p).strip()
        key = normalise(text)
        if key not in seen:
            seen.add(key)
            out.append(text)
    return out


def _typo(text: str, rng: random.Random) -> str:
    words = [i for i, w in enumerate(text.split(" ")) if len(w) >= 4 and w.isalpha()]
    if not words:
        return text + "s"
    tokens = text.split(" ")
    w = tokens[rng.choice(words)]
    p = rng.randrange(1, len(w) - 1)
    op = rng.choice(["swap", "drop", "double", "replace"])
    if op == "swap":
        w2 = w[:p] + w[p + 1] + w[p] + w[p + 2:]
    elif op == "drop":
        w2 = w[:p] + w[p + 1:]
    elif op == "double":
        w2 = w[:p] + w[p] + w[p:]
    else:
        w2 = w[:p] + rng.choice("aeiourstnl") + w[p + 1:]
    tokens[tokens.index(w)] = w2
    return " ".join(tokens)


def variant(text: str, rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["case", "spacing", "punctuation", "greeting", "thanks", "typo"])
    if kind == "case":
        return kind, rng.choice([text.lower(), text.upper(), text.title()])
    if kind == "spacing":
        return kind, rng.choice(["  " + text.replace(" ", "  ", 3) + " ", text.replace(", ", ",").replace(". ", ".")
                                 if ", " in text or ". " in text else text.replace(" ", "\t", 2)])
    if kind == "punctuation":
        stripped = text.rstrip("?.!")
        return kind, rng.choice([stripped, stripped + "??", stripped + "!", text.replace("'", "").replace(",", "")])
    if kind == "greeting":
        return kind, rng.choice(["Hi, ", "Hello! ", "Hey there, ", "Good morning, ", "Hi team, "]) + text
    if kind == "thanks":
        return kind, text + rng.choice([" Thanks!", " Thank you.", " thanks a lot", " Thanks in advance!"])
    return kind, _typo(text, rng)


def make_corpus(n: int, n_variants: int, seed: int = 11) -> tuple[list[dict], dict[str, str]]:
    """Records with each variant placed somewhere after its original; truth maps variant -> original."""
    rng = random.Random(seed)
    base = realistic_prompts(n - n_variants)
    keyed = [((i, 0, i), {"id": f"p{i}", "text": t}) for i, t in enumerate(base)]
    truth: dict[str, str] = {}
    for k, i in enumerate(rng.sample(range(len(base)), n_variants)):
        truth[f"v{k}"] = f"p{i}"
        keyed.append(((rng.randrange(i, len(base)), 1, k), {"id": f"v{k}", "text": variant(base[i], rng)[1]}))
    keyed.sort(key=lambda kr: kr[0])
    return [r for _, r in keyed], truth


def score(dup_of: dict[str, str | None], truth: dict[str, str]) -> tuple[float, float, int]:
    flagged = {k: v for k, v in dup_of.items() if v is not None}
    right = sum(1 for k, v in flagged.items() if truth.get(k) == v or truth.get(k) == truth.get(v, v))
    recall = sum(1 for k, v in truth.items() if flagged.get(k) == v) / max(len(truth), 1)
    return recall, right / max(len(flagged), 1), len(flagged)


def baseline(records: list[dict], settings: DedupSettings) -> dict[str, str | None]:
    """What one writes first: one datasketch MinHash per text, update() per shingle, query then insert."""
    from datasketch import MinHash, MinHashLSH

    order = {r["id"]: i for i, r in enumerate(records)}
    lsh = MinHashLSH(threshold=settings.threshold, num_perm=settings.num_perm)
    out: dict[str, str | None] = {}
    for r in records:
        norm = normalise(r["text"]).replace(" ", "")
        m = MinHash(num_perm=settings.num_perm)
        for p in range(max(len(norm) - settings.shingle + 1, 1)):
            m.update(norm[p:p + settings.shingle].encode("utf-8"))
        hits = lsh.query(m)
        if hits:
            out[r["id"]] = min(hits, key=lambda h: order[h])
        else:
            lsh.insert(r["id"], m)
            out[r["id"]] = None
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=40_000)
    parser.add_argument("--variants", type=int, default=4_000)
    args = parser.parse_args()
    settings = DedupSettings()
    records, truth = make_corpus(args.n, args.variants)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
        flywheel = Path(sys.executable).with_name("flywheel")
        t0 = time.perf_counter()
        subprocess.run([str(flywheel), "dedup", str(src), "-o", str(dst), "--field", "text", "--annotate"],
                       check=True, cwd=tmp, capture_output=True)
        cli_s = time.perf_counter() - t0
        ours = {r["id"]: r["dup_of"] for r in map(orjson.loads, dst.read_bytes().splitlines())}
    t0 = time.perf_counter()
    base = baseline(records, settings)
    base_s = time.perf_counter() - t0
    for name, result, secs in (("flywheel dedup (CLI, incl. start-up)", ours, cli_s),
                               ("datasketch update() + LSH loop", base, base_s)):
        recall, precision, flagged = score(result, truth)
        print(f"{name:40s} {secs:7.2f} s  {len(records) / secs:9.0f} texts/s  "
              f"recall {recall:.3f}  precision {precision:.3f}  flagged {flagged}")
    print(f"speed-up: {base_s / cli_s:.1f}x  ({len(records)} texts, {len(truth)} planted variants, "
          f"threshold {settings.threshold}, {settings.shingle}-{settings.shingle_unit} shingles, "
          f"{settings.num_perm} perms)")

if __name__ == "__main__":
    main()

"""Exact then MinHash-LSH near-duplicate removal, vectorised, incremental across dataset versions.

Why it looks like this:

* Short chat prompts are the main input, so the default shingles are character 3-grams of a normalised
  text (NFKC, case-folded, punctuation and whitespace removed, a leading greeting and a trailing
  "thanks" stripped): case, spacing, punctuation, pleasantries and one typo barely move the sketch.
* Signatures are datasketch's own ``affine32`` MinHash (same permutations, same pre-mix), computed for
  every shingle of every text at once in numpy instead of one ``update()`` per shingle; banding uses
  datasketch's optimal (bands, rows) for the threshold. ``signature_reference`` shows the equivalence.
* Every candidate pair from the bands is verified on its estimated Jaccard, and a record is a duplicate
  only of a record that was *kept* (no chains), always the earliest one: the output is deterministic.
* The kept records of every earlier dataset version form a :class:`DedupIndex` that is consulted first,
  so a new example near-duplicating one already trained on is flagged (``dup_of`` = the old id).

numpy and datasketch are imported inside functions so that ``flywheel --help`` stays fast.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from curation.step import ExclusionWriter, Record, Step
from flywheel.settings import DedupSettings

if TYPE_CHECKING:
    import numpy as np

SEED = 1  # datasketch's default MinHash seed
CANDIDATES_PER_BUCKET = 8  # a record is compared with at most this many earliest members of each bucket
CHUNK_SHINGLES = 1 << 16  # shingles per numpy block (x num_perm x 4 bytes of memory)
_MASK64 = (1 << 64) - 1
# Odd 64-bit multipliers: shingle t of a window contributes unit * _POLY[t] (mod 2^64).
_POLY = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
         0xA0761D6478BD642F, 0xE7037ED1A0B428DB, 0x8EBC6AF09C88C6E3, 0x589965CC75374CC3)
_PUNCT = re.compile(r"[^\w\s]|_")
_SPACE = re.compile(r"\s+")
_GREETING = re.compile(
    r"^(?:(?:hi|hello|hey|hiya|greetings|good (?:morning|afternoon|evening)|dear (?:support|team|sir|madam))"
    r"(?: (?:there|team|all|everyone|folks|support))? )+"
)
_THANKS = re.compile(
    r"(?: (?:thanks|thank you|thx|ty|cheers|many thanks|much appreciated|appreciate it)"
    r"(?: (?:a lot|so much|very much|in advance|again|for your help|for the help))?)+$"
)

FieldSpec = str | Sequence[str] | Callable[[Record], Any]


class FieldError(ValueError):
    """A record lacks the field to deduplicate on; the message names it."""


# --------------------------------------------------------------------------------------------- text
def normalise(text: str, strip_pleasantries: bool = True) -> str:
    """The text two trivially different prompts share: lower case, no punctuation, single spaces."""
    text = _PUNCT.sub(" ", unicodedata.normalize("NFKC", text).casefold())
    text = _SPACE.sub(" ", text).strip()
    if strip_pleasantries:
        stripped = _THANKS.sub("", _GREETING.sub("", text + " ").rstrip())
        text = stripped or text  # a message that is only "thanks!" stays itself
    return text


def field_text(record: Record, spec: FieldSpec) -> str:
    """The text to deduplicate on: a dotted path (lists are walked: ``messages.content``), several
    paths joined by newlines, or a function of the record."""
    if callable(spec):
        return str(spec(record))
    if not isinstance(spec, str):
        return "\n".join(field_text(record, s) for s in spec)
    values: list[Any] = [record]
    for key in spec.split("."):
        found = []
        for value in values:
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, dict) and key in item:
                    found.append(item[key])
        if not found:
            raise FieldError(f"field {spec!r}: missing in record {str(record.get('id', '?'))[:80]}; "
                             f"pass --field with the key that holds the text")
        values = found
    parts = []
    for value in values:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict | list):
                raise FieldError(f"field {spec!r}: holds an object, not text; name a path down to the text")
            parts.append("" if item is None else str(item))
    return "\n".join(parts)


# --------------------------------------------------------------------------------------- signatures
def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> 33)
    h = h * 0xFF51AFD7ED558CCD
    h = h ^ (h >> 33)
    h = h * 0xC4CEB9FE1A85EC53
    return h ^ (h >> 33)


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> 16)
    h = h * 0x85EBCA6B
    h = h ^ (h >> 13)
    h = h * 0xC2B2AE35
    return h ^ (h >> 16)


def _word_unit(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def shingle_units(norm: str, unit: str) -> list[int]:
    """A normalised text as the sequence its shingles slide over: characters, or hashed words."""
    if unit == "word":
        return [_word_unit(w) for w in norm.split()]
    if unit == "char":
        return [ord(c) for c in norm.replace(" ", "")]
    raise ValueError(f"dedup.shingle_unit: {unit!r} is not one of char, word")


def shingle_hash(units: Sequence[int]) -> int:
    """32-bit hash of one shingle (pure Python; the numpy path computes exactly this for all at once)."""
    h = 0
    for t, u in enumerate(units):
        h = (h + u * _POLY[t]) & _MASK64
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _MASK64
    h ^= h >> 33
    return h >> 32


def shingles(norm: str, settings: DedupSettings) -> list[tuple[int, ...]]:
    units = shingle_units(norm, settings.shingle_unit)
    k = settings.shingle
    if len(units) < k:
        return [tuple(units)] if units else []
    return [tuple(units[p:p + k]) for p in range(len(units) - k + 1)]


def permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutation parameters (a, b) for ``num_perm``."""
    from datasketch import MinHash

    a, b = MinHash(num_perm=num_perm, seed=SEED, scheme="affine32").permutations
    return a, b


def signature_reference(norm: str, settings: DedupSettings) -> np.ndarray:
    """The signature of one normalised text the datasketch way (one ``update`` per shingle)."""
    from datasketch import MinHash

    m = MinHash(num_perm=settings.num_perm, seed=SEED, scheme="affine32", hashfunc=shingle_hash)
    for sh in shingles(norm, settings):
        m.update(sh)
    return m.hashvalues


def signatures(norms: Sequence[str], settings: DedupSettings) -> np.ndarray:
    """MinHash signatures (n x num_perm, uint32) of normalised texts, all shingles at once in numpy.

    An empty text has no shingles; its row stays at the maximum value (and it is never a near-dup).
    """
    import numpy as np

    k, n = settings.shingle, len(norms)
    if settings.shingle_unit == "char":
        squeezed = [t.replace(" ", "") for t in norms]
        lengths = np.fromiter((len(t) for t in squeezed), dtype=np.int64, count=n)
        units = np.frombuffer("".join(squeezed).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        units = units.astype(np.uint64)
    else:
        per_doc = [shingle_units(t, settings.shingle_unit) for t in norms]
        lengths = np.fromiter((len(u) for u in per_doc), dtype=np.int64, count=n)
        units = np.fromiter((u for doc in per_doc for u in doc), dtype=np.uint64, count=int(lengths.sum()))
    counts = np.where(lengths >= k, lengths - k + 1, np.minimum(lengths, 1))
    total = int(counts.sum())
    doc_of = np.repeat(np.arange(n), counts)
    first_shingle = np.cumsum(counts) - counts
    start = (np.cumsum(lengths) - lengths)[doc_of] + (np.arange(total) - first_shingle[doc_of])
    span = np.minimum(lengths, k)[doc_of]
    padded = np.concatenate([units, np.zeros(k, dtype=np.uint64)])
    h = np.zeros(total, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for t in range(k):
            h += np.where(t < span, padded[start + t] * np.uint64(_POLY[t]), np.uint64(0))
        mixed = _fmix32((_fmix64(h) >> np.uint64(32)).astype(np.uint32))
    a, b = permutations(settings.num_perm)
    sig = np.full((n, settings.num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    for lo in range(0, total, CHUNK_SHINGLES):
        hv, docs = mixed[lo:lo + CHUNK_SHINGLES], doc_of[lo:lo + CHUNK_SHINGLES]
        # Permutations x shingles: each permutation's row is contiguous, so the per-text minimum
        # (reduceat over each text's run of shingles) streams through memory.
        with np.errstate(over="ignore"):
            permuted = a[:, None] * hv[None, :]
            permuted += b[:, None]
        seg = np.flatnonzero(np.r_[True, docs[1:] != docs[:-1]])
        part = np.minimum.reduceat(permuted, seg, axis=1).T
        rows = docs[seg]
        sig[rows] = np.minimum(sig[rows], part)
    return sig


def lsh_params(settings: DedupSettings) -> tuple[int, int]:
    """(bands, rows) minimising datasketch's weighted false positive + false negative probability."""
    from datasketch.lsh import _optimal_param

    return _optimal_param(settings.threshold, settings.num_perm, 0.5, 0.5)


def candidate_pairs(sig: np.ndarray, active: np.ndarray, partition_keys: np.ndarray,
                    bands: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j), j < i, that share an LSH bucket; each row meets the earliest members of its buckets."""
    import numpy as np

    idx = np.flatnonzero(active)
    rng = np.random.default_rng(SEED)
    mult = rng.integers(1, 1 << 63, size=rows, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    found_i, found_j = [], []
    for band in range(bands):
        block = sig[idx, band * rows:(band + 1) * rows].astype(np.uint64)
        with np.errstate(over="ignore"):
            keys = (block * mult).sum(axis=1, dtype=np.uint64)
            keys = _fmix64(keys ^ partition_keys[idx] ^ np.uint64(band * 0x9E3779B97F4A7C15 & _MASK64))
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        pos = np.arange(len(order))
        new = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]] if len(order) else np.zeros(0, dtype=bool)
        bucket_start = np.maximum.accumulate(np.where(new, pos, 0)) if len(order) else pos
        rank = pos - bucket_start
        for q in range(CANDIDATES_PER_BUCKET):
            later = rank > q
            if not later.any():
                break
            found_i.append(idx[order[later]])
            found_j.append(idx[order[bucket_start[later] + q]])
    if not found_i:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    i, j = np.concatenate(found_i), np.concatenate(found_j)
    pair = np.unique(i.astype(np.int64) * len(sig) + j)
    return pair // len(sig), pair % len(sig)


# ---------------------------------------------------------------------------------------- the index
@dataclass
class DedupIndex:
    """Kept records of earlier dataset versions: what new records are checked against first."""

    ids: list[str] = field(default_factory=list)
    partitions: list[str] = field(default_factory=list)
    norms: list[str] = field(default_factory=list)
    signatures: Any = None  # numpy (n x num_perm) uint32, or None when empty

    FILE = "dedup-index.jsonl"
    SIGNATURES = "dedup-signatures.npy"

    def __len__(self) -> int:
        return len(self.ids)

    def save(self, directory: Path, settings: DedupSettings) -> list[Path]:
        """Write the index (JSON lines, then the signature matrix) into a dataset version directory."""
        import numpy as np

        directory.mkdir(parents=True, exist_ok=True)
        meta = {"num_perm": settings.num_perm, "shingle": settings.shingle, "unit": settings.shingle_unit,
                "strip_pleasantries": settings.strip_pleasantries}
        lines = [orjson.dumps(meta, option=orjson.OPT_SORT_KEYS)]
        lines += [orjson.dumps({"id": i, "partition": p, "norm": n})
                  for i, p, n in zip(self.ids, self.partitions, self.norms, strict=True)]
        (directory / self.FILE).write_bytes(b"\n".join(lines) + b"\n")
        sig = self.signatures if self.signatures is not None else np.zeros((0, settings.num_perm), np.uint32)
        with open(directory / self.SIGNATURES, "wb") as fh:
            np.save(fh, np.ascontiguousarray(sig, dtype=np.uint32), allow_pickle=False)
        return [directory / self.FILE, directory / self.SIGNATURES]

    @classmethod
    def load(cls, directories: Iterable[Path], settings: DedupSettings) -> DedupIndex:
        """Union of the indexes in ``directories`` (oldest first); signatures are recomputed when the
        shingling settings changed since they were stored."""
        import numpy as np

        index, blocks = cls(), []
        for directory in directories:
            path = directory / cls.FILE
            if not path.is_file():
                continue
            lines = path.read_bytes().splitlines()
            meta, rows = orjson.loads(lines[0]), [orjson.loads(line) for line in lines[1:]]
            norms = [r["norm"] for r in rows]
            same = meta == {"num_perm": settings.num_perm, "shingle": settings.shingle,
                            "unit": settings.shingle_unit, "strip_pleasantries": settings.strip_pleasantries}
            blocks.append(np.load(directory / cls.SIGNATURES) if same else signatures(norms, settings))
            index.ids += [r["id"] for r in rows]
            index.partitions += [r["partition"] for r in rows]
            index.norms += norms
        if blocks:
            index.signatures = np.concatenate(blocks)
        return index


# ------------------------------------------------------------------------------------------ finding
@dataclass(frozen=True)
class Duplicate:
    of: int  # position of the representative: index entries first, then the new texts
    how: str  # exact | near
    similarity: float


def _exact_key(partition: str, norm: str, raw: str) -> str:
    # A text that normalises to nothing ("???") is compared on its raw form instead.
    body = norm if norm else "\x00" + raw.strip()
    return hashlib.blake2b(f"{partition}\x1f{body}".encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _partition_key(partition: str) -> int:
    return int.from_bytes(hashlib.blake2b(partition.encode(), digest_size=8).digest(), "little")


def find_duplicates(texts: Sequence[str], settings: DedupSettings, partitions: Sequence[str] | None = None,
                    index: DedupIndex | None = None) -> tuple[list[Duplicate | None], list[str], Any]:
    """For each text: ``None`` when kept, else the earliest kept record it duplicates.

    Returns (duplicates, normalised texts, signatures of the new texts). Positions in ``Duplicate.of``
    count the index's entries first.
    """
    import numpy as np

    index = index or DedupIndex()
    parts = list(partitions) if partitions is not None else [""] * len(texts)
    norms = [normalise(t, settings.strip_pleasantries) for t in texts]
    new_sig = signatures(norms, settings)
    m = len(index)
    all_norms = index.norms + norms
    all_parts = index.partitions + parts
    all_raw = index.norms + list(texts)
    sig = new_sig if index.signatures is None or not m else np.concatenate([index.signatures, new_sig])

    result: list[Duplicate | None] = [None] * (m + len(texts))
    first_seen: dict[str, int] = {}
    for pos, (p, norm, raw) in enumerate(zip(all_parts, all_norms, all_raw, strict=True)):
        key = _exact_key(p, norm, raw)
        if key in first_seen and pos >= m:
            result[pos] = Duplicate(first_seen[key], "exact", 1.0)
        else:
            first_seen.setdefault(key, pos)

    active = np.array([bool(n) and d is None for n, d in zip(all_norms, result, strict=True)], dtype=bool)
    partition_keys = np.array([_partition_key(p) for p in all_parts], dtype=np.uint64)
    bands, rows = lsh_params(settings)
    i, j = candidate_pairs(sig, active, partition_keys, bands, rows)
    keep = i >= m  # pairs among earlier versions are settled already
    i, j = i[keep], j[keep]
    similarity = (sig[i] == sig[j]).mean(axis=1) if len(i) else np.zeros(0)
    ok = similarity >= settings.threshold
    for a, b, s in zip(i[ok].tolist(), j[ok].tolist(), similarity[ok].tolist(), strict=True):
        if result[a] is None and result[b] is None:  # pairs arrive sorted by (a, b): earliest kept wins
            result[a] = Duplicate(b, "near", float(s))
    return result[m:], norms, new_sig


def cluster_representatives(texts: Sequence[str], settings: DedupSettings) -> list[int]:
    """Group similar texts (MinHash LSH, transitive): each text gets the position of its cluster's earliest
    member. Used to let annotators review one cluster at a time and to split train/eval by cluster."""
    import numpy as np

    norms = [normalise(t, settings.strip_pleasantries) for t in texts]
    sig = signatures(norms, settings)
    parent = list(range(len(texts)))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first_seen: dict[str, int] = {}
    for pos, (norm, raw) in enumerate(zip(norms, texts, strict=True)):
        other = first_seen.setdefault(_exact_key("", norm, raw), pos)
        parent[root(pos)] = root(other)
    active = np.array([bool(n) for n in norms], dtype=bool)
    bands, rows = lsh_params(settings)
    i, j = candidate_pairs(sig, active, np.zeros(len(texts), dtype=np.uint64), bands, rows)
    ok = (sig[i] == sig[j]).mean(axis=1) >= settings.threshold if len(i) else np.zeros(0, dtype=bool)
    for a, b in zip(i[ok].tolist(), j[ok].tolist(), strict=True):
        ra, rb = root(a), root(b)
        parent[max(ra, rb)] = min(ra, rb)
    return [root(x) for x in range(len(texts))]


# ---------------------------------------------------------------------------------------- the step
class Dedup(Step):
    """Drops (or, with ``annotate``, marks with ``dup_of``) exact and near duplicates; first one wins.

    ``field`` names the text (see :func:`field_text`); ``partition`` (a field or function) keeps groups
    apart, e.g. SFT examples never duplicate DPO pairs; ``index`` holds earlier versions' records.
    After a run, ``kept_index`` holds the kept records, ready to be saved with the new version.
    """

    name = "dedup"

    def __init__(self, settings: DedupSettings, field: FieldSpec = "text", exclusions: ExclusionWriter | None = None,
                 index: DedupIndex | None = None, annotate: bool = False,
                 partition: FieldSpec | None = None) -> None:
        super().__init__(exclusions)
        self.settings = settings
        self.field = field
        self.index = index
        self.annotate = annotate
        self.partition = partition
        self.kept_index = DedupIndex()

    def run(self, records: Iterable[Record]) -> Iterator[Record]:
        valid, texts, parts = [], [], []
        for record in records:
            try:
                if not isinstance(record.get("id"), str | int) or record.get("id") == "":
                    raise FieldError("id: missing or not a string; every record needs a unique 'id'")
                texts.append(field_text(record, self.field))
                parts.append(field_text(record, self.partition) if self.partition is not None else "")
            except FieldError as exc:
                self.stats["invalid"] += 1
                self.exclude(record, str(exc))
                continue
            valid.append(record)
        self.stats["input"] += len(valid)
        dups, norms, sig = find_duplicates(texts, self.settings, parts, self.index)
        index_ids = self.index.ids if self.index is not None else []
        ids = [*index_ids, *(r["id"] for r in valid)]
        kept_rows = []
        for pos, (record, dup) in enumerate(zip(valid, dups, strict=True)):
            if dup is None:
                kept_rows.append(pos)
                yield {**record, "dup_of": None} if self.annotate else record
                continue
            self.stats[dup.how] += 1
            if dup.of < len(index_ids):
                self.stats["earlier_version"] += 1
            if self.annotate:
                yield {**record, "dup_of": ids[dup.of]}
            else:
                where = "an earlier dataset version's " if dup.of < len(index_ids) else ""
                self.exclude(record, f"{dup.how} duplicate of {where}record {ids[dup.of]} "
                                     f"(similarity {dup.similarity:.2f})")
        self.kept_index = DedupIndex(
            ids=[str(valid[p]["id"]) for p in kept_rows], partitions=[parts[p] for p in kept_rows],
            norms=[norms[p] for p in kept_rows], signatures=sig[kept_rows] if len(kept_rows) else None,
        )


def dedup_jsonl(in_path: Path, out_path: Path, settings: DedupSettings, field: FieldSpec = "text",
                annotate: bool = False) -> Dedup:
    """The ``flywheel dedup`` command: JSONL in, JSONL out in the same order; bad lines are reported
    (line number and reason) in the returned step's exclusions, never crash the run."""
    records = []
    with open(in_path, "rb") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                record = {"_line": line_no, "_error": f"line {line_no}: not valid JSON ({exc})"}
            if not isinstance(record, dict):
                record = {"_line": line_no, "_error": f"line {line_no}: expected a JSON object"}
            records.append(record)
    step = Dedup(settings, field=field, annotate=annotate)

    def readable(rows: list[Record]) -> Iterator[Record]:
        for record in rows:
            if "_error" in record:
                step.stats["invalid"] += 1
                step.exclude(record, record["_error"])
            else:
                yield record

    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "wb") as out:
        out.writelines(orjson.dumps(r) + b"\n" for r in step(readable(records)))
    return step

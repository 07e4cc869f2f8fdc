"""Exact then MinHash-LSH near-duplicate removal: streaming, memory-bounded, incremental across versions.

Why it looks like this:

* Short chat prompts are the main input, so shingles are characters of a normalised text (NFKC,
  case-folded, punctuation and whitespace removed, a leading greeting and a trailing "thanks" stripped,
  in English and Chinese): case, spacing, punctuation and pleasantries do not move the sketch at all.
* Two *schemes*: Latin-script text uses character 3-grams and a Jaccard threshold of 0.78; Chinese (and
  other CJK) text uses character 2-grams and 0.6, since one changed character of a 20-character Chinese
  sentence already removes a tenth of its 3-grams. A text's scheme is part of its partition: an English
  prompt is never compared with a Chinese one.
* A typo moves a short text's sketch a lot (one changed letter of 20 removes 3 of 18 trigrams), and a
  Jaccard threshold is too coarse for a ten-character question, so a short text (``edit_max_chars``) is a
  near-duplicate of a candidate only by its character edits (optimal string alignment: Levenshtein with a
  swap of neighbours as one edit; at most ``length x edit_ratio`` rounded, at least one, and never when
  their numbers differ: "v2" is not "v3"); a longer one by Jaccard.
* A Chinese question of 8 to 12 characters may be two edits from its near-duplicate (a dropped particle
  and a mistyped character), though its ratio grants one: but not when the two edits replace one word
  (adjacent characters, at least one replaced): 怎么开通自动续费 and 怎么关闭自动续费 ask opposite things.
* Signatures are datasketch's own ``affine32`` MinHash (same permutations, same pre-mix), computed for all
  shingles of a batch at once in numpy; ``signature_reference`` shows the equivalence. Candidates come from
  LSH band tables tuned below the threshold (so that the edit test sees its candidates); each is verified.
* Records stream through in batches and are compared with every record *kept* so far (no chains), the
  earliest first: the output is deterministic, and memory per kept record is its signature (512 bytes)
  plus its band-table entries, not its shingles.
* The kept records of every earlier dataset version form a :class:`DedupIndex` that seeds the tables,
  so a new example near-duplicating one already trained on is flagged (``dup_of`` = the old id). The index
  stores digests and signatures, and the normalised text only as the dataset holds it (scrubbed).

numpy is imported inside functions so that ``flywheel --help`` stays fast.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import combinations, pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from curation.step import Drop, ExclusionWriter, Record, RunContext, Step, StepStats
from curation.text import has_cjk
from curation.text import normalise as plain_text
from flywheel.records import conversation_text
from flywheel.settings import DedupSettings

if TYPE_CHECKING:
    import numpy as np

SEED = 1  # datasketch's default MinHash seed
CANDIDATES_PER_BUCKET = 8  # a record is compared with at most this many earliest members of each bucket
NEIGHBOUR_CHARS = 16  # texts this short also find candidates by their one-deletion neighbours
TWO_EDIT_CJK_CHARS = (8, 12)  # CJK texts this long (from, up to) get two edits and two-deletion neighbours
CHUNK_SHINGLES = 1 << 16  # shingles per numpy block (x num_perm x 8 bytes of memory)
LSH_MARGIN = 0.2  # band tables find candidates down to (threshold - margin): the edit test needs them
_MASK64 = (1 << 64) - 1
# Odd 64-bit multipliers: shingle t of a window contributes unit * _POLY[t] (mod 2^64).
_POLY = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
         0xA0761D6478BD642F, 0xE7037ED1A0B428DB, 0x8EBC6AF09C88C6E3, 0x589965CC75374CC3)
_PUNCT = re.compile(r"[^\w\s]|_")
_SPACE = re.compile(r"\s+")
_DIGITS = re.compile(r"\d+")
_GREETING = re.compile(
    r"^(?:(?:hi|hello|hey|hiya|greetings|good (?:morning|afternoon|evening)|dear (?:support|team|sir|madam)|"
    r"你好|您好|哈喽|嗨|请问|麻烦问一下|打扰一下)(?: (?:there|team|all|everyone|folks|support))? ?)+"
)
_THANKS = re.compile(
    r"(?: ?(?:thanks|thank you|thx|ty|cheers|many thanks|much appreciated|appreciate it|谢谢|多谢|谢谢你|谢谢您|"
    r"感谢|麻烦了|辛苦了)(?: (?:a lot|so much|very much|in advance|again|for your help|for the help))?)+$"
)

FieldSpec = str | Sequence[str] | Callable[[Record], Any]


class FieldError(ValueError):
    """A record lacks the field to deduplicate on; the message names it."""


# --------------------------------------------------------------------------------------------- text
def normalise(text: str, strip_pleasantries: bool = True) -> str:
    """The text two trivially different prompts share: lower case, no punctuation, single spaces, Chinese in
    Simplified characters (the same question asked in Taipei and in Beijing)."""
    text = _PUNCT.sub(" ", plain_text(text).casefold())
    text = _SPACE.sub(" ", text).strip()
    if strip_pleasantries:
        stripped = _THANKS.sub("", _GREETING.sub("", text + " ").rstrip()).strip()
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


# ------------------------------------------------------------------------------------------ schemes
@dataclass(frozen=True)
class Scheme:
    """How one script's texts are shingled and when two of them are near-duplicates."""

    name: str
    unit: str  # char | word
    k: int
    threshold: float
    edit_ratio: float


def schemes(settings: DedupSettings) -> dict[str, Scheme]:
    return {"latin": Scheme("latin", settings.shingle_unit, settings.shingle, settings.threshold,
                            settings.edit_ratio),
            "cjk": Scheme("cjk", "char", settings.cjk_shingle, settings.cjk_threshold, settings.cjk_edit_ratio)}


def scheme_of(norm: str) -> str:
    """``cjk`` when at least half the characters of a normalised text are CJK, else ``latin``."""
    if not has_cjk(norm):
        return "latin"
    squeezed = norm.replace(" ", "")
    cjk = sum(1 for ch in squeezed if "\u2e80" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af"
              or "\uf900" <= ch <= "\ufaff" or "\U00020000" <= ch <= "\U0003134f")
    return "cjk" if cjk * 2 >= len(squeezed) else "latin"


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


def shingles(norm: str, scheme: Scheme) -> list[tuple[int, ...]]:
    units = shingle_units(norm, scheme.unit)
    k = scheme.k
    if len(units) < k:
        return [tuple(units)] if units else []
    return [tuple(units[p:p + k]) for p in range(len(units) - k + 1)]


@cache
def permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutation parameters (a, b) for ``num_perm`` (importing datasketch takes most
    of a second, once per process)."""
    from datasketch import MinHash

    a, b = MinHash(num_perm=num_perm, seed=SEED, scheme="affine32").permutations
    return a, b


def signature_reference(norm: str, scheme: Scheme, num_perm: int) -> np.ndarray:
    """The signature of one normalised text the datasketch way (one ``update`` per shingle)."""
    from datasketch import MinHash

    m = MinHash(num_perm=num_perm, seed=SEED, scheme="affine32", hashfunc=shingle_hash)
    for sh in shingles(norm, scheme):
        m.update(sh)
    return m.hashvalues


def signatures(norms: Sequence[str], scheme: Scheme, num_perm: int) -> np.ndarray:
    """MinHash signatures (n x num_perm, uint32) of normalised texts, all shingles at once in numpy.

    An empty text has no shingles; its row stays at the maximum value (and it is never a near-dup).
    """
    import numpy as np

    k, n = scheme.k, len(norms)
    if scheme.unit == "char":
        squeezed = [t.replace(" ", "") for t in norms]
        lengths = np.fromiter((len(t) for t in squeezed), dtype=np.int64, count=n)
        units = np.frombuffer("".join(squeezed).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        units = units.astype(np.uint64)
    else:
        per_doc = [shingle_units(t, scheme.unit) for t in norms]
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
    a, b = permutations(num_perm)
    sig = np.full((n, num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
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


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) with bands x rows <= num_perm that minimise the false-positive plus false-negative
    area of the LSH S-curve 1 - (1 - s^rows)^bands around ``threshold`` (equal weights)."""
    import numpy as np

    def area(lo: float, hi: float, bands: int, rows: int, positive: bool) -> float:
        s = np.linspace(lo, hi, 201)
        p = 1 - (1 - s ** rows) ** bands
        return float(np.trapezoid(1 - p if positive else p, s))

    best = (math.inf, 1, num_perm)
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            error = area(0.0, threshold, bands, rows, False) + area(threshold, 1.0, bands, rows, True)
            best = min(best, (error, bands, rows))
    return best[1], best[2]


# ---------------------------------------------------------------------------------------- the index
@dataclass
class DedupIndex:
    """Kept records: what later records (and later dataset versions) are checked against.

    Per record: its id, partition, scheme, the digest its exact duplicates share, its normalised text as
    stored (in a dataset version, the scrubbed one) and its MinHash signature."""

    ids: list[Any] = field(default_factory=list)  # record ids as given (str or int)
    partitions: list[str] = field(default_factory=list)
    schemes: list[str] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    norms: list[str] = field(default_factory=list)
    signatures: Any = None  # numpy (n x num_perm) uint32, or None when empty

    FILE = "dedup-index.jsonl"
    SIGNATURES = "dedup-signatures.npy"

    def __len__(self) -> int:
        return len(self.ids)

    def select(self, rows: Sequence[int]) -> DedupIndex:
        rows = list(rows)
        return DedupIndex([self.ids[p] for p in rows], [self.partitions[p] for p in rows],
                          [self.schemes[p] for p in rows], [self.digests[p] for p in rows],
                          [self.norms[p] for p in rows], self.signatures[rows] if rows else None)

    def save(self, directory: Path, settings: DedupSettings) -> list[Path]:
        """Write the index (JSON lines, then the signature matrix) into a dataset version directory."""
        import numpy as np

        directory.mkdir(parents=True, exist_ok=True)
        lines = [orjson.dumps(_meta(settings), option=orjson.OPT_SORT_KEYS)]
        lines += [orjson.dumps({"id": i, "partition": p, "scheme": s, "digest": d, "norm": n})
                  for i, p, s, d, n in zip(self.ids, self.partitions, self.schemes, self.digests, self.norms,
                                           strict=True)]
        (directory / self.FILE).write_bytes(b"\n".join(lines) + b"\n")
        sig = self.signatures if self.signatures is not None else np.zeros((0, settings.num_perm), np.uint32)
        with open(directory / self.SIGNATURES, "wb") as fh:
            np.save(fh, np.ascontiguousarray(sig, dtype=np.uint32), allow_pickle=False)
        return [directory / self.FILE, directory / self.SIGNATURES]

    @classmethod
    def load(cls, directories: Iterable[Path], settings: DedupSettings) -> DedupIndex:
        """Union of the indexes in ``directories`` (oldest first); signatures and digests are recomputed
        from the stored texts when the dedup settings changed since they were written."""
        import numpy as np

        index, blocks = cls(), []
        by_name = schemes(settings)
        for directory in directories:
            path = directory / cls.FILE
            if not path.is_file():
                continue
            lines = path.read_bytes().splitlines()
            meta, rows = orjson.loads(lines[0]), [orjson.loads(line) for line in lines[1:]]
            # Rows stored before Traditional characters were read as Simplified: their Chinese is normalised again
            # (a 請問 or 謝謝 now strips as 请问 / 谢谢 does).
            norms = [normalise(r["norm"], settings.strip_pleasantries) if has_cjk(r["norm"]) else r["norm"] for r in rows]
            if meta == _meta(settings):
                block = np.load(directory / cls.SIGNATURES)
                kinds, digests = [r["scheme"] for r in rows], [r["digest"] for r in rows]
                stale = [p for p, r in enumerate(rows) if r["norm"] != norms[p]]  # hashed again
            else:
                kinds = [scheme_of(n) for n in norms]
                block = np.zeros((len(rows), settings.num_perm), np.uint32)
                digests, stale = [""] * len(rows), list(range(len(rows)))
            for p in stale:
                digests[p] = _exact_digest(rows[p]["partition"], norms[p], norms[p])
            for name, scheme in by_name.items():
                pos = [p for p in stale if kinds[p] == name]
                if pos:
                    block[pos] = signatures([norms[p] for p in pos], scheme, settings.num_perm)
            blocks.append(block)
            index.ids += [r["id"] for r in rows]
            index.partitions += [r["partition"] for r in rows]
            index.schemes += kinds
            index.digests += digests
            index.norms += norms
        if blocks:
            index.signatures = np.concatenate(blocks)
        return index


def _meta(settings: DedupSettings) -> dict[str, Any]:
    return {"num_perm": settings.num_perm, "shingle": settings.shingle, "unit": settings.shingle_unit,
            "cjk_shingle": settings.cjk_shingle, "strip_pleasantries": settings.strip_pleasantries, "format": 2}


# ------------------------------------------------------------------------------------------ finding
@dataclass(frozen=True)
class Duplicate:
    of: int  # position of the representative among everything the finder holds (index entries first)
    how: str  # exact | near
    similarity: float


def _exact_digest(partition: str, norm: str, raw: str) -> str:
    # A text that normalises to nothing ("???") is compared on its raw form instead.
    body = norm if norm else "\x00" + raw.strip()
    return hashlib.blake2b(f"{partition}\x1f{body}".encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _neighbour_keys(partition: str, scheme: str, norm: str) -> list[int]:
    """A short text and every text one character deletion away from it: two texts one edit apart (replace,
    insert, delete, swap) share one of these, however few shingles they share. A CJK text of
    ``TWO_EDIT_CJK_CHARS`` adds the texts two deletions away (66 more at 12 characters), so that two texts
    two edits apart share one too."""
    squeezed = norm.replace(" ", "")
    n = len(squeezed)
    if n > NEIGHBOUR_CHARS:
        return []
    variants = {squeezed, *(squeezed[:i] + squeezed[i + 1:] for i in range(n))}
    if scheme == "cjk" and TWO_EDIT_CJK_CHARS[0] <= n <= TWO_EDIT_CJK_CHARS[1]:
        variants.update(squeezed[:i] + squeezed[i + 1:j] + squeezed[j + 1:] for i, j in combinations(range(n), 2))
    salt = hash((partition, scheme))
    return [salt ^ hash(v) for v in variants]


def _replaces_a_word(a: str, b: str) -> bool:
    """Whether two of the edits from ``a`` to ``b`` are neighbours and one of them replaces a character: a
    word swapped for another (开通 -> 关闭), not two scattered slips."""
    from rapidfuzz.distance import Levenshtein

    steps = Levenshtein.editops(a, b)
    return any(y.src_pos - x.src_pos <= 1 and y.dest_pos - x.dest_pos <= 1 and "replace" in (x.tag, y.tag)
               for x, y in pairwise(steps))


def _add_member(buckets: dict[int, tuple[int, ...]], key: int, pos: int) -> None:
    """Add a kept record to a bucket unless it is full. Buckets are tuples: most hold one record, and a
    tuple of ints is smaller than a list and untracked by the garbage collector."""
    members = buckets.get(key, ())
    if len(members) < CANDIDATES_PER_BUCKET:
        buckets[key] = (*members, pos)


def _partition_key(partition: str, scheme: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{partition}\x1f{scheme}".encode(), digest_size=8).digest(), "little")


class DuplicateFinder:
    """Everything kept so far, and the test of a new batch of texts against it (in order, earliest wins).

    Band tables per scheme map a band's hash to the earliest kept records in that bucket; signatures of
    kept records sit in one growing array."""

    def __init__(self, settings: DedupSettings, index: DedupIndex | None = None) -> None:
        import numpy as np

        self.settings = settings
        self.schemes = schemes(settings)
        self.lsh = {name: lsh_params(max(0.05, s.threshold - LSH_MARGIN), settings.num_perm)
                    for name, s in self.schemes.items()}
        rng = np.random.default_rng(SEED)
        self.multipliers = rng.integers(1, 1 << 63, size=settings.num_perm, dtype=np.uint64) * np.uint64(2) + 1
        self.tables: dict[str, list[dict[int, tuple[int, ...]]]] = {
            name: [{} for _ in range(bands)] for name, (bands, _) in self.lsh.items()}
        self.exact: dict[str, int] = {}
        self.neighbours: dict[int, tuple[int, ...]] = {}  # deletion neighbour key -> earliest kept short texts
        self.kept = DedupIndex(signatures=np.zeros((0, settings.num_perm), np.uint32))
        self._sig = np.zeros((1024, settings.num_perm), np.uint32)
        self.n_index = 0
        if index is not None and len(index):
            self._add_all(index)
            self.n_index = len(index)

    def __len__(self) -> int:
        return len(self.kept.ids)

    def _band_keys(self, sig: np.ndarray, scheme: str, partition_keys: np.ndarray) -> np.ndarray:
        """(n x bands) bucket keys of signatures under one scheme's banding."""
        import numpy as np

        bands, rows = self.lsh[scheme]
        keys = np.zeros((len(sig), bands), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for band in range(bands):
                block = sig[:, band * rows:(band + 1) * rows].astype(np.uint64)
                mixed = (block * self.multipliers[band * rows:(band + 1) * rows]).sum(axis=1, dtype=np.uint64)
                keys[:, band] = _fmix64(mixed ^ partition_keys ^ np.uint64(band * 0x9E3779B97F4A7C15 & _MASK64))
        return keys

    def _keep(self, record_id: Any, partition: str, scheme: str, digest: str, norm: str, sig_row: Any,
              band_keys: Sequence[int], neighbour_keys: Sequence[int]) -> None:
        import numpy as np

        pos = len(self.kept.ids)
        if pos == len(self._sig):
            self._sig = np.concatenate([self._sig, np.zeros_like(self._sig)])
        self._sig[pos] = sig_row
        self.kept.ids.append(record_id)
        self.kept.partitions.append(partition)
        self.kept.schemes.append(scheme)
        self.kept.digests.append(digest)
        self.kept.norms.append(norm)
        self.exact.setdefault(digest, pos)
        if norm:
            for table, key in zip(self.tables[scheme], band_keys, strict=True):
                _add_member(table, key, pos)
            for key in neighbour_keys:
                _add_member(self.neighbours, key, pos)

    def _add_all(self, index: DedupIndex) -> None:
        import numpy as np

        keys_by_scheme = {}
        for name in self.schemes:
            rows = [p for p, s in enumerate(index.schemes) if s == name]
            if rows:
                pk = np.array([_partition_key(index.partitions[p], name) for p in rows], dtype=np.uint64)
                keys_by_scheme.update(zip(rows, self._band_keys(index.signatures[rows], name, pk).tolist(),
                                          strict=True))
        for p in range(len(index)):
            self._keep(index.ids[p], index.partitions[p], index.schemes[p], index.digests[p], index.norms[p],
                       index.signatures[p], keys_by_scheme.get(p, []),
                       _neighbour_keys(index.partitions[p], index.schemes[p], index.norms[p]))

    def check(self, ids: Sequence[Any], texts: Sequence[str],
              partitions: Sequence[str]) -> list[Duplicate | None]:
        """Each text in order: None (kept, and added to what later texts are checked against) or the
        earliest kept record it duplicates."""
        import numpy as np
        from rapidfuzz.distance import OSA

        norms = [normalise(t, self.settings.strip_pleasantries) for t in texts]
        kinds = [scheme_of(n) for n in norms]
        sig = np.zeros((len(texts), self.settings.num_perm), np.uint32)
        band_keys: list[list[int]] = [[] for _ in texts]
        for name, scheme in self.schemes.items():
            rows = [p for p, kind in enumerate(kinds) if kind == name]
            if not rows:
                continue
            sig[rows] = signatures([norms[p] for p in rows], scheme, self.settings.num_perm)
            pk = np.array([_partition_key(partitions[p], name) for p in rows], dtype=np.uint64)
            for p, keys in zip(rows, self._band_keys(sig[rows], name, pk).tolist(), strict=True):
                band_keys[p] = keys
        out: list[Duplicate | None] = []
        for p, (record_id, raw, norm, kind) in enumerate(zip(ids, texts, norms, kinds, strict=True)):
            digest = _exact_digest(partitions[p], norm, raw)
            if digest in self.exact:
                out.append(Duplicate(self.exact[digest], "exact", 1.0))
                continue
            neighbour_keys = _neighbour_keys(partitions[p], kind, norm)
            found = self._near(norm, kind, sig[p], band_keys[p], neighbour_keys, OSA) if norm else None
            out.append(found)
            if found is None:
                self._keep(record_id, partitions[p], kind, digest, norm, sig[p], band_keys[p], neighbour_keys)
        return out

    def _near(self, norm: str, kind: str, sig_row: Any, keys: Sequence[int], neighbour_keys: Sequence[int],
              edits: Any) -> Duplicate | None:
        """The earliest kept candidate that is a near-duplicate: a short text (``edit_max_chars``) by its
        character edits, a longer one by its estimated Jaccard similarity."""
        candidates = sorted({pos for table, key in zip(self.tables[kind], keys, strict=True)
                             for pos in table.get(key, ())}
                            | {pos for key in neighbour_keys for pos in self.neighbours.get(key, ())})
        if not candidates:
            return None
        scheme = self.schemes[kind]
        similarity = (self._sig[candidates] == sig_row).mean(axis=1)
        squeezed = norm.replace(" ", "")
        if len(squeezed) > self.settings.edit_max_chars:
            best = next((p for p, sim in zip(candidates, similarity.tolist(), strict=True)
                         if sim >= scheme.threshold), None)
            return None if best is None else Duplicate(best, "near", float(similarity[candidates.index(best)]))
        by_ratio = max(1, int(len(squeezed) * scheme.edit_ratio + 0.5))
        short_cjk = kind == "cjk" and TWO_EDIT_CJK_CHARS[0] <= len(squeezed) <= TWO_EDIT_CJK_CHARS[1]
        allowed = max(by_ratio, 2) if short_cjk else by_ratio
        digits = _DIGITS.findall(norm)
        for pos, sim in zip(candidates, similarity.tolist(), strict=True):
            other = self.kept.norms[pos].replace(" ", "")
            if not other or _DIGITS.findall(self.kept.norms[pos]) != digits:
                continue
            distance = edits.distance(squeezed, other, score_cutoff=allowed)
            if distance <= by_ratio or (distance <= allowed and not _replaces_a_word(squeezed, other)):
                return Duplicate(pos, "near", float(sim))
        return None

    def kept_index(self, rows: Sequence[int] | None = None) -> DedupIndex:
        """The records kept in this run (index entries excluded), optionally only ``rows`` of them."""
        n = len(self.kept.ids)
        own = DedupIndex(self.kept.ids[self.n_index:], self.kept.partitions[self.n_index:],
                         self.kept.schemes[self.n_index:], self.kept.digests[self.n_index:],
                         self.kept.norms[self.n_index:], self._sig[self.n_index:n].copy())
        return own if rows is None else own.select(rows)


def find_duplicates(texts: Sequence[str], settings: DedupSettings, partitions: Sequence[str] | None = None,
                    index: DedupIndex | None = None) -> list[Duplicate | None]:
    """For each text: ``None`` when kept, else the earliest kept record it duplicates, by position among
    the index's entries and then ``texts``."""
    finder = DuplicateFinder(settings, index)
    at = list(range(finder.n_index))  # finder position -> position among index entries, then texts
    out: list[Duplicate | None] = []
    found = finder.check([str(i) for i in range(len(texts))], texts,
                         list(partitions) if partitions is not None else [""] * len(texts))
    for pos, dup in enumerate(found):
        if dup is None:
            at.append(finder.n_index + pos)
            out.append(None)
        else:
            out.append(Duplicate(at[dup.of], dup.how, dup.similarity))
    return out


def cluster_representatives(texts: Sequence[str], settings: DedupSettings) -> list[int]:
    """Group similar texts: each text gets the position of the earliest text of its group. Used to let
    annotators review one cluster at a time and to split train/eval by cluster."""
    return [pos if dup is None else dup.of for pos, dup in enumerate(find_duplicates(texts, settings))]


# ---------------------------------------------------------------------------------------- the step
class Dedup(Step):
    """Drops (or, with ``annotate``, marks with ``dup_of``) exact and near duplicates; first one wins.

    ``field`` names the text (see :func:`field_text`); ``partition`` (a field or function) keeps groups
    apart, e.g. SFT examples never duplicate DPO pairs; ``index`` holds earlier versions' records.
    After a run, ``kept_index()`` holds the kept records, ready to be saved with the new version.
    """

    name = "dedup"
    per_record = False
    batch_size = 2048

    def __init__(self, settings: DedupSettings, field: FieldSpec = "text", exclusions: ExclusionWriter | None = None,
                 index: DedupIndex | None = None, annotate: bool = False,
                 partition: FieldSpec | None = None) -> None:
        super().__init__(exclusions)
        self.settings = settings
        self.field = field
        self.annotate = annotate
        self.partition = partition
        self.finder = DuplicateFinder(settings, index)

    @classmethod
    def from_settings(cls, context: RunContext) -> Dedup:
        settings = context.settings.dedup
        return cls(settings, field=conversation_text, partition="kind",
                   index=DedupIndex.load(context.earlier_versions, settings))

    @classmethod
    def headline(cls, stats: StepStats) -> tuple[str, int]:
        return "duplicates removed", stats.n_dropped

    def kept_index(self) -> DedupIndex:
        return self.finder.kept_index()

    def process(self, batch: list[Record]) -> list[Record | Drop]:
        results: list[Record | Drop | None] = [None] * len(batch)
        valid, texts, parts = [], [], []
        for pos, record in enumerate(batch):
            try:
                if not isinstance(record, dict):
                    raise FieldError(f"record is {type(record).__name__}; expected a JSON object")
                if not isinstance(record.get("id"), str | int) or record.get("id") == "":
                    raise FieldError("id: missing or not a string; every record needs a unique 'id'")
                text = field_text(record, self.field)
                part = field_text(record, self.partition) if self.partition is not None else ""
                texts.append(text)
                parts.append(part)
            except FieldError as exc:
                results[pos] = Drop("invalid", str(exc))
                continue
            valid.append(pos)
        dups = self.finder.check([batch[p]["id"] for p in valid], texts, parts)
        for pos, dup in zip(valid, dups, strict=True):
            record = batch[pos]
            if dup is None:
                results[pos] = {**record, "dup_of": None} if self.annotate else record
                continue
            of = self.finder.kept.ids[dup.of]
            earlier = dup.of < self.finder.n_index
            self.count(dup.how)
            if earlier:
                self.count("earlier_version")
            if self.annotate:
                results[pos] = {**record, "dup_of": of}
            else:
                where = "an earlier dataset version's " if earlier else ""
                results[pos] = Drop(f"{dup.how}_duplicate", f"of {where}record {of} (similarity {dup.similarity:.2f})")
        return results  # type: ignore[return-value]

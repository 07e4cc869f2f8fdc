"""Small file helpers shared by the base-model cache and the adapter registry."""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FINGERPRINT_EDGE_BYTES = 4 << 20


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (server, flows, tests) that build or register the same thing."""
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_fingerprint(model_dir: Path) -> str:
    """Identity of a HF model directory: its config plus the size, head and tail of every weight file.

    Hashing an 8B checkpoint in full takes a minute; head + tail + size tells two checkpoints apart in
    practice and takes milliseconds. Files under 8 MiB (the embedded model) are hashed whole.
    """
    model_dir = Path(model_dir)
    config = model_dir / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"{model_dir}: no config.json; not a HF model directory")
    h = hashlib.sha256(json.dumps(json.loads(config.read_text()), sort_keys=True).encode())
    for p in sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.bin")):
        size = p.stat().st_size
        h.update(f"{p.name}:{size}".encode())
        with p.open("rb") as f:
            h.update(f.read(FINGERPRINT_EDGE_BYTES))
            if size > 2 * FINGERPRINT_EDGE_BYTES:
                f.seek(size - FINGERPRINT_EDGE_BYTES)
            h.update(f.read())
    return h.hexdigest()

"""Interaction ids this server can recognise as its own, without keeping a list of them.

Each completion id is ``chatcmpl-`` + a random nonce + a MAC of the nonce under a key kept in
``FLYWHEEL_HOME/serving/interaction-ids.key`` (made on first start, mode 0600). Feedback names an
interaction by that id; the feedback API accepts it only when the MAC checks out, so made-up or
mistyped ids are refused at the door, after any restart and on every server sharing the home.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

PREFIX = "chatcmpl-"
NONCE_HEX, MAC_HEX = 24, 16


class InteractionIds:
    def __init__(self, key_path: Path) -> None:
        self.key = _key(key_path)

    def new(self) -> str:
        nonce = secrets.token_hex(NONCE_HEX // 2)
        return PREFIX + nonce + self._mac(nonce)

    def issued(self, interaction_id: str) -> bool:
        """Was this id made by a server holding this key?"""
        body = interaction_id.removeprefix(PREFIX)
        if body == interaction_id or len(body) != NONCE_HEX + MAC_HEX:
            return False
        return hmac.compare_digest(body[NONCE_HEX:], self._mac(body[:NONCE_HEX]))

    def _mac(self, nonce: str) -> str:
        return hmac.new(self.key, nonce.encode(), hashlib.sha256).hexdigest()[:MAC_HEX]


def _key(path: Path) -> bytes:
    """The key at ``path``, made if absent: written whole under a temporary name, then linked into place,
    so two servers starting at once end up with the same key and neither ever reads half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another server made it first: use theirs
        finally:
            tmp.unlink()
    key = path.read_bytes()
    if len(key) != 32:
        raise RuntimeError(f"{path} is not a 32-byte key; remove it and restart (feedback on ids issued "
                           "before is then refused)")
    return key

"""Version names (``v1``, ``v2``, ...) of dataset versions and adapters: the one parser every stage uses."""

from __future__ import annotations

import re
from collections.abc import Iterable

VERSION = re.compile(r"^v([1-9][0-9]{0,8})$")


def version_number(name: str) -> int:
    """``v12`` -> 12; 0 for anything that is not a version name (``base``, ``v0``, ``v1a``)."""
    match = VERSION.match(name)
    return int(match.group(1)) if match else 0


def is_version(name: str) -> bool:
    return version_number(name) > 0


def next_version(existing: Iterable[str]) -> str:
    """The name after the highest version in ``existing`` (``v1`` when there is none)."""
    return f"v{max((version_number(v) for v in existing), default=0) + 1}"

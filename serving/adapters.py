"""The server's live adapter set: which versions are loaded, which one is production, how to roll back.

Promotion is one attribute assignment: a request resolves ``production`` to a version when it is
admitted and keeps that version to the end, so in-flight requests finish on the adapter they started
with and new ones see the new adapter. A version only becomes servable after it has been loaded beside
the others and smoke-tested on the engine's worker thread; a corrupt one is refused and nothing that
was serving changes. The state survives restarts in ``FLYWHEEL_HOME/serving/live.json`` (atomic write).

Adapter versions are registry names (``v3``), never paths: the directory is derived from the name and
must resolve inside ``settings.adapters_dir``, so ``../`` or a symlink out of the registry is refused.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flywheel.settings import Settings
from serving.engine import BASE, AdapterError, GenerationEngine

log = logging.getLogger(__name__)

PRODUCTION = "production"
VERSION_RE = re.compile(r"^v[1-9][0-9]{0,8}$")


class UnknownModel(LookupError):
    """The ``model`` of a request names nothing this server serves."""


class NothingToRollBack(RuntimeError):
    pass


def adapter_dir(settings: Settings, version: str) -> Path:
    """The registry directory of ``version``; refuses names that are not versions and paths that leave it."""
    if not VERSION_RE.match(version):
        raise AdapterError(f"adapter version {version!r} is not a registry version; use a name like v3")
    root = settings.adapters_dir.resolve()
    path = (root / version).resolve()
    if not path.is_relative_to(root) or path.parent != root:
        raise AdapterError(f"adapter {version}: {root / version} resolves to {path}, outside the registry {root}")
    if not (path / "adapter_config.json").is_file():
        raise AdapterError(f"adapter {version}: no adapter_config.json in {path}; register it with `flywheel train`")
    return path


def check_adapter_files(path: Path) -> None:
    """Refuse an adapter whose files are unreadable or hold NaN/inf before it touches the live model."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        config = json.loads((path / "adapter_config.json").read_text())
    except (OSError, ValueError) as exc:
        raise AdapterError(f"{path / 'adapter_config.json'}: not valid JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        raise AdapterError(f"{path / 'adapter_config.json'}: peft_type must be LORA")
    weights = path / "adapter_model.safetensors"
    try:
        tensors = load_file(str(weights))
    except (OSError, SafetensorError) as exc:
        raise AdapterError(f"{weights}: unreadable ({exc}); re-export the adapter") from None
    if not tensors:
        raise AdapterError(f"{weights}: holds no tensors")
    for name, tensor in tensors.items():
        if not bool(tensor.float().isfinite().all()):
            raise AdapterError(f"{weights}: tensor {name} holds NaN or inf values")


class LiveAdapters:
    def __init__(self, settings: Settings, engine: GenerationEngine) -> None:
        self.settings = settings
        self.engine = engine
        self.state_path = settings.home / "serving" / "live.json"
        self.production: str | None = None
        self.history: list[str] = []  # earlier production versions, newest last: the rollback targets
        self.servable: set[str] = set()  # loaded and not being unloaded
        self._lock = threading.Lock()  # one admin change at a time

    # ---- requests --------------------------------------------------------------------------------
    def resolve(self, model: str) -> str:
        """The adapter a request for ``model`` runs on, fixed for the whole request."""
        if model == PRODUCTION:
            return self.production or BASE
        if model == BASE or model in self.servable:
            return model
        raise UnknownModel(model)

    def model_ids(self) -> list[str]:
        return [BASE, PRODUCTION, *sorted(self.servable, key=_version_number)]

    # ---- admin -----------------------------------------------------------------------------------
    def load(self, version: str) -> dict[str, Any]:
        with self._lock:
            self._load(version)
            self._save()
            return self.snapshot()

    def promote(self, version: str) -> dict[str, Any]:
        with self._lock:
            self._load(version)
            previous = self.production
            if previous != version:
                if previous is not None:
                    self.history = [v for v in self.history if v != previous] + [previous]
                self.production = version
                self._save()
            log.info("production adapter: %s (was %s)", version, previous)
            return {**self.snapshot(), "previous": previous}

    def rollback(self) -> dict[str, Any]:
        with self._lock:
            if not self.history:
                raise NothingToRollBack("no earlier production adapter to roll back to")
            retired, self.production = self.production, self.history.pop()
            self._save()
            log.info("rolled back production adapter: %s (was %s)", self.production, retired)
            return {**self.snapshot(), "retired": retired}

    def unload(self, version: str) -> dict[str, Any]:
        with self._lock:
            if version == self.production:
                raise AdapterError(f"adapter {version} is production; promote another one first")
            if self.history and version == self.history[-1]:
                raise AdapterError(f"adapter {version} is the rollback target; it stays loaded")
            self.servable.discard(version)  # new requests stop resolving it before the unload is queued
            self.history = [v for v in self.history if v != version]
            # queued behind every request already admitted for it
            self.engine.call(lambda: self.engine.unload_adapter(version)).result()
            self._save()
            return self.snapshot()

    def restore(self, production_hint: str | None = None) -> None:
        """Reload what ``live.json`` says was serving; then follow the warehouse's production adapter."""
        state = self._read()
        for version in state.get("loaded", []):
            try:
                self._load(version)
            except AdapterError as exc:
                log.warning("not restoring adapter %s: %s", version, exc)
        production = state.get("production")
        self.production = production if production in self.servable else None
        if production and self.production is None:
            log.warning("live.json named %s as production but it could not be loaded; serving the base model",
                        production)
        self.history = [v for v in state.get("history", []) if v in self.servable and v != self.production]
        if production_hint and production_hint != self.production:
            try:
                self.promote(production_hint)
            except AdapterError as exc:
                log.warning("the warehouse names %s as production but it was refused: %s", production_hint, exc)
        with self._lock:
            self._save()

    def snapshot(self) -> dict[str, Any]:
        return {"production": self.production, "history": list(self.history),
                "loaded": sorted(self.servable, key=_version_number)}

    # ---- internals -------------------------------------------------------------------------------
    def _load(self, version: str) -> None:
        if version in self.servable:
            return
        path = adapter_dir(self.settings, version)
        check_adapter_files(path)
        self.engine.call(lambda: self.engine.load_adapter(version, path)).result()
        self.servable.add(version)

    def _read(self) -> dict[str, Any]:
        if not self.state_path.is_file():
            return {}
        try:
            data = json.loads(self.state_path.read_text())
        except ValueError as exc:
            log.warning("%s is not valid JSON (%s); starting from the base model", self.state_path, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        payload = {**self.snapshot(), "updated_at": datetime.now(UTC).isoformat()}
        fd, tmp = tempfile.mkstemp(prefix=".live-", dir=self.state_path.parent)
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.state_path)


def _version_number(version: str) -> float:
    return int(version[1:]) if VERSION_RE.match(version) else math.inf

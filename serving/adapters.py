"""The server's live adapter set: which versions are loaded, which one is production, how to roll back.

Promotion is one attribute assignment: a request resolves ``production`` to a version when it is
admitted and keeps that version to the end, so in-flight requests finish on the adapter they started
with and new ones see the new adapter. A version only becomes servable after it has been loaded beside
the others and smoke-tested on the engine's worker thread; a corrupt one is refused and nothing that
was serving changes. The state survives restarts in ``FLYWHEEL_HOME/serving/live.json`` (atomic write).

Adapter versions are registry names (``v3``), never paths: ``training.registry.adapter_path`` derives
the directory and refuses ``../`` or a symlink out of the registry; ``validate_adapter`` checks the
files against their registration hashes and the base model before anything touches the live model.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flywheel.settings import Settings
from flywheel.versions import version_number
from serving.engine import BASE, GenerationEngine
from training.registry import AdapterError, adapter_path, validate_adapter

log = logging.getLogger(__name__)

PRODUCTION = "production"


class UnknownModel(LookupError):
    """The ``model`` of a request names nothing this server serves."""


class NothingToRollBack(RuntimeError):
    pass


def registered_adapter(settings: Settings, version: str, base_model: Path) -> Path:
    """The registry directory of ``version``, validated for ``base_model``; AdapterError otherwise."""
    path = adapter_path(settings, version)
    validate_adapter(path, base_model)
    check_weights_finite(path)
    return path


def check_weights_finite(path: Path) -> None:
    """A registered adapter can still hold NaN/inf (a diverged run): refuse it before the smoke test."""
    from safetensors.torch import load_file

    weights = path / "adapter_model.safetensors"
    if not weights.is_file():
        return
    for name, tensor in load_file(str(weights)).items():
        if not bool(tensor.float().isfinite().all()):
            raise AdapterError(f"{weights}: tensor {name} holds NaN or inf values; the training run diverged")


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
        return [BASE, PRODUCTION, *sorted(self.servable, key=version_number)]

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
        """Back to the previous production adapter, or to the base model when the first one is rolled back."""
        with self._lock:
            if self.production is None:
                raise NothingToRollBack("the base model is serving; there is no production adapter to roll back")
            retired, self.production = self.production, (self.history.pop() if self.history else None)
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
                "loaded": sorted(self.servable, key=version_number)}

    # ---- internals -------------------------------------------------------------------------------
    def _load(self, version: str) -> None:
        if version in self.servable:
            return
        path = registered_adapter(self.settings, version, self.engine.model_dir)
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

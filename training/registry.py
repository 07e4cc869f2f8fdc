"""The adapter registry: ``FLYWHEEL_HOME/adapters/vK/`` on disk, status in the warehouse.

Each version directory holds the PEFT adapter files (``adapter_config.json``,
``adapter_model.safetensors``) and ``metadata.json``: dataset version, base model id and fingerprint,
training config, metrics, project version, creation time and the sha256 of every adapter file. The
directory never changes after registration; the status (candidate / production / rejected / retired)
lives in the warehouse ``adapters`` table and every change is appended to ``adapter_events``, which is
how ``previous_production`` finds the rollback target. At most one adapter is in production:
promoting one retires the one before.

This module owns the training stage's tables: ``adapters``, ``adapter_events``, ``training_runs`` (one row per
retraining run: running, succeeded or failed) and ``evaluations`` (each gate decision with its metrics and
reasons). Every statement on them is here; the other stages call these functions.

Serving loads an adapter with ``PeftModel.from_pretrained(base, adapter_path(settings, version))``
after ``validate_adapter(path, base_model_path)`` has checked it belongs to that base.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flywheel.settings import Settings
from flywheel.versions import is_version, next_version
from flywheel.warehouse import connect, content_id, now
from training.files import file_lock, model_fingerprint, sha256_file

if TYPE_CHECKING:
    from training.evaluate import Evaluation

STATUSES = ("candidate", "production", "rejected", "retired")
ADAPTER_CONFIG = "adapter_config.json"
WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
METADATA = "metadata.json"
# Sane LoRA hyper-parameters: outside them an adapter is a mistake or an attack (lora_alpha 1e30 loads,
# passes a finite-logits smoke test at some prompts and serves gibberish), whatever its tensors say.
MAX_RANK = 1024
MAX_LORA_SCALE = 64.0  # lora_alpha / r (lora_alpha / sqrt(r) with rsLoRA); recipes use 1-4
LORA_KEY_RE = re.compile(r"^(base_model\.model\.)?(?P<module>.+)\.lora_(?P<side>[AB])(\.[^.]+)?\.weight$")


class AdapterError(ValueError):
    """An adapter that cannot be used; the message says what is wrong and what to do."""


def project_version() -> str:
    try:
        return package_version("flywheel")
    except PackageNotFoundError:
        return "unknown"


def register_adapter(settings: Settings, adapter_dir: Path, metadata: dict[str, Any]) -> str:
    """Copy a trained adapter into the registry as the next version, status ``candidate``; returns ``vK``.

    ``metadata`` should carry ``dataset_version``, ``base_model``, ``base_model_hash``, ``config`` and
    ``metrics``; the registry adds ``version``, ``project_version``, ``created_at`` and file hashes.
    """
    adapter_dir = Path(adapter_dir)
    _check_files(adapter_dir)
    settings.adapters_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(settings.adapters_dir / ".registry.lock"):
        version = _next_version(settings)
        target = settings.adapters_dir / version
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=settings.adapters_dir))
        try:
            for name in (ADAPTER_CONFIG, *WEIGHT_FILES):
                if (adapter_dir / name).is_file():
                    shutil.copy2(adapter_dir / name, staging / name)
            record = {
                **metadata,
                "version": version,
                "project_version": project_version(),
                "created_at": now().isoformat(),
                "files": {p.name: sha256_file(p) for p in sorted(staging.iterdir())},
            }
            (staging / METADATA).write_text(json.dumps(record, indent=2, sort_keys=True, default=str))
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        with connect(settings) as con:
            con.execute(
                "INSERT INTO adapters (version, path, status, base_model, dataset_version, metadata, created_at, "
                "updated_at) VALUES (?, ?, 'candidate', ?, ?, ?, ?, ?)",
                [version, str(target), str(metadata.get("base_model")), metadata.get("dataset_version"),
                 json.dumps(record, default=str), now(), now()],
            )
            _event(con, version, None, "candidate", "registered")
    return version


def set_status(settings: Settings, version: str, status: str, reason: str = "") -> None:
    """Change an adapter's status; promoting to production retires the current production adapter."""
    if status not in STATUSES:
        raise AdapterError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    _check_version(version)
    with connect(settings) as con:
        row = con.execute("SELECT status FROM adapters WHERE version = ?", [version]).fetchone()
        if row is None:
            raise AdapterError(f"adapter {version} is not registered; see `flywheel status` for the versions")
        con.execute("BEGIN TRANSACTION")
        if status == "production":
            for (current,) in con.execute(
                "SELECT version FROM adapters WHERE status = 'production' AND version <> ?", [version]
            ).fetchall():
                con.execute("UPDATE adapters SET status = 'retired', updated_at = ? WHERE version = ?", [now(), current])
                _event(con, current, "production", "retired", f"replaced by {version}")
        con.execute("UPDATE adapters SET status = ?, updated_at = ? WHERE version = ?", [status, now(), version])
        _event(con, version, row[0], status, reason)
        con.execute("COMMIT")


def production_version(settings: Settings) -> str | None:
    with connect(settings, read_only=True) as con:
        row = con.execute("SELECT version FROM adapters WHERE status = 'production'").fetchone()
    return row[0] if row else None


def previous_production(settings: Settings) -> str | None:
    """The adapter that was in production before the current one (the rollback target), if any."""
    current = production_version(settings)
    with connect(settings, read_only=True) as con:
        row = con.execute(
            "SELECT e.version FROM adapter_events e JOIN adapters a ON a.version = e.version "
            "WHERE e.to_status = 'production' AND e.version IS DISTINCT FROM ? AND a.status <> 'rejected' "
            "ORDER BY e.created_at DESC, e.id LIMIT 1",
            [current],
        ).fetchone()
    return row[0] if row else None


def adapter_status(settings: Settings, version: str) -> str:
    _check_version(version)
    with connect(settings, read_only=True) as con:
        row = con.execute("SELECT status FROM adapters WHERE version = ?", [version]).fetchone()
    if row is None:
        raise AdapterError(f"adapter {version} is not registered; see `flywheel status` for the versions")
    return row[0]


def list_adapters(settings: Settings) -> list[dict[str, Any]]:
    with connect(settings, read_only=True) as con:
        rows = con.execute(
            "SELECT version, status, dataset_version, created_at, updated_at FROM adapters "
            "ORDER BY CAST(substr(version, 2) AS INTEGER)"
        ).fetchall()
    keys = ("version", "status", "dataset_version", "created_at", "updated_at")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def adapter_for_dataset(settings: Settings, dataset_version: str) -> tuple[str, str, str | None] | None:
    """(adapter version, registry status, latest gate decision) of the newest adapter trained on
    ``dataset_version``, or None when none was: how a re-run turn knows not to train it again."""
    with connect(settings, read_only=True) as con:
        row = con.execute(
            "SELECT a.version, a.status, (SELECT e.decision FROM evaluations e WHERE e.adapter_version = a.version "
            "ORDER BY e.created_at DESC LIMIT 1) FROM adapters a WHERE a.dataset_version = ? "
            "ORDER BY a.created_at DESC LIMIT 1", [dataset_version]).fetchone()
    return tuple(row) if row else None


def record_evaluation(settings: Settings, adapter_version: str, against: str | None, evaluation: Evaluation) -> str:
    """Store an evaluation's metrics, gate decision and reasons in ``evaluations``; returns the row id."""
    at = now()
    row_id = content_id("evaluation", adapter_version, against, at.isoformat())
    metrics = {"candidate": evaluation.candidate, "reference": evaluation.reference,
               "reference_name": evaluation.reference_name}
    with connect(settings) as con:
        con.execute(
            "INSERT INTO evaluations (id, adapter_version, against, metrics, decision, reasons, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [row_id, adapter_version, against, json.dumps(metrics, allow_nan=True), evaluation.gate.decision,
             json.dumps(evaluation.gate.reasons), at],
        )
    return row_id


def run_started(settings: Settings, run_id: str, dataset_version: str, config: dict[str, Any]) -> None:
    """A ``training_runs`` row marked running; a rerun of the same run (resuming after a crash) resets it."""
    with connect(settings) as con:
        con.execute(
            "INSERT INTO training_runs (run_id, dataset_version, status, config, started_at) VALUES (?, ?, 'running', ?, ?) "
            "ON CONFLICT (run_id) DO UPDATE SET status = 'running', error = NULL, started_at = excluded.started_at, "
            "finished_at = NULL",
            [run_id, dataset_version, json.dumps(config), now()],
        )


def run_finished(settings: Settings, run_id: str, status: str, adapter_version: str | None, error: str | None) -> None:
    """Close a ``training_runs`` row: ``succeeded`` with its adapter, or ``failed`` with the error."""
    with connect(settings) as con:
        con.execute(
            "UPDATE training_runs SET status = ?, adapter_version = ?, error = ?, finished_at = ? WHERE run_id = ?",
            [status, adapter_version, error, now(), run_id],
        )


def adapter_path(settings: Settings, version: str) -> Path:
    """The directory of a registered version; refuses anything that is not ``vK`` inside the registry, and
    a directory without the registration record (``metadata.json`` with the hash of every adapter file)."""
    _check_version(version)
    root = settings.adapters_dir.resolve()
    path = (root / version).resolve()
    if path.parent != root:
        raise AdapterError(f"adapter {version!r} resolves outside the registry {root}; refusing it")
    if not (path / ADAPTER_CONFIG).is_file():
        raise AdapterError(f"adapter {version} has no directory in {root}; was it registered on this home?")
    hashed = read_metadata(path).get("files")
    if not isinstance(hashed, dict) or ADAPTER_CONFIG not in hashed or not any(w in hashed for w in WEIGHT_FILES):
        raise AdapterError(f"adapter {version}: {path}/{METADATA} is missing or lists no file hashes, so its files "
                           "cannot be checked; register adapters with `flywheel train` (register_adapter)")
    return path


def read_metadata(path: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(path) / METADATA).read_text())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise AdapterError(f"{path}/{METADATA}: not valid JSON ({exc}); re-register the adapter") from None


def validate_adapter(path: Path, base_model_path: Path, expected_rank: int | None = None) -> dict[str, Any]:
    """Check that an adapter directory is complete, intact and made for this base model; returns its config.

    Raises :class:`AdapterError` for missing files, a corrupt weight file, files that changed since
    registration, a different base model (fingerprint or tensor shapes) and a rank that disagrees with
    the config, the tensors or ``expected_rank``.
    """
    path, base_model_path = Path(path), Path(base_model_path)
    config = _check_files(path)
    for entry in path.iterdir():
        if not entry.is_file() or entry.is_symlink():
            raise AdapterError(f"{entry}: not a regular file; an adapter directory holds only its own files "
                               "(no links, no folders)")
    metadata = read_metadata(path)
    for name, digest in metadata.get("files", {}).items():
        if not (path / name).is_file() or sha256_file(path / name) != digest:
            raise AdapterError(f"{path}/{name}: missing or changed since registration (sha256 mismatch); "
                               "the adapter is corrupt, re-train or restore it")
    if metadata.get("base_model_hash") and metadata["base_model_hash"] != model_fingerprint(base_model_path):
        raise AdapterError(f"{path}: trained on base model {metadata.get('base_model')} "
                           f"(fingerprint {metadata['base_model_hash'][:12]}), not on {base_model_path}; "
                           "serve it with the base it was trained on")
    tensors = _adapter_tensor_shapes(path)
    base_shapes = _base_tensor_shapes(base_model_path)
    rank = config.get("r")
    if expected_rank is not None and rank != expected_rank:
        raise AdapterError(f"{path}: LoRA rank {rank} but rank {expected_rank} was expected")
    for key, shape in tensors.items():
        lora = LORA_KEY_RE.match(key)
        if lora is None:  # modules_to_save, DoRA magnitudes: nothing to compare
            continue
        module, side = lora.group("module"), lora.group("side")
        base_key = module + ".weight"
        rank_dim = shape[0] if side == "A" else shape[1]
        if not config.get("rank_pattern") and rank_dim != rank:
            raise AdapterError(f"{path}: tensor {key} has rank {rank_dim} but adapter_config.json says r={rank}")
        if base_key not in base_shapes:
            raise AdapterError(f"{path}: adapts {module}, which base model {base_model_path} does not have; "
                               "wrong base model")
        out_features, in_features = base_shapes[base_key][:2]
        if (side == "A" and shape[1] != in_features) or (side == "B" and shape[0] != out_features):
            raise AdapterError(f"{path}: {key} has shape {list(shape)}, which does not fit {base_key} "
                               f"{list(base_shapes[base_key])} of {base_model_path}; wrong base model")
    return config


def _check_files(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        raise AdapterError(f"{path}: no such adapter directory")
    if not (path / ADAPTER_CONFIG).is_file():
        raise AdapterError(f"{path}: missing {ADAPTER_CONFIG}; not a PEFT adapter directory")
    if not any((path / w).is_file() for w in WEIGHT_FILES):
        raise AdapterError(f"{path}: missing adapter weights ({' or '.join(WEIGHT_FILES)})")
    try:
        config = json.loads((path / ADAPTER_CONFIG).read_text())
    except json.JSONDecodeError as exc:
        raise AdapterError(f"{path}/{ADAPTER_CONFIG}: not valid JSON ({exc})") from None
    if not isinstance(config, dict) or not isinstance(config.get("r"), int):
        raise AdapterError(f"{path}/{ADAPTER_CONFIG}: no integer LoRA rank 'r'; not a LoRA adapter config")
    _check_hyperparameters(path / ADAPTER_CONFIG, config)
    return config


def _check_hyperparameters(where: Path, config: dict[str, Any]) -> None:
    """Refuse LoRA settings no training run produces: a rank or scale out of range, a dropout that is not a
    probability, another PEFT method under a LoRA name."""
    if config.get("peft_type", "LORA") != "LORA":
        raise AdapterError(f"{where}: peft_type {config.get('peft_type')!r}; only LoRA adapters are served")
    rslora = bool(config.get("use_rslora"))
    ranks = {"r": config["r"], **{f"rank_pattern.{k}": v for k, v in (config.get("rank_pattern") or {}).items()}}
    for name, rank in ranks.items():
        if not isinstance(rank, int) or isinstance(rank, bool) or not 1 <= rank <= MAX_RANK:
            raise AdapterError(f"{where}: {name} = {rank!r}; a LoRA rank is an integer from 1 to {MAX_RANK}")
    alphas = {"lora_alpha": config.get("lora_alpha", 8),
              **{f"alpha_pattern.{k}": v for k, v in (config.get("alpha_pattern") or {}).items()}}
    for name, alpha in alphas.items():
        if not isinstance(alpha, int | float) or isinstance(alpha, bool) or not math.isfinite(alpha) or alpha <= 0:
            raise AdapterError(f"{where}: {name} = {alpha!r}; it must be a positive finite number")
        rank = config["r"]
        scale = alpha / (math.sqrt(rank) if rslora else rank)
        if scale > MAX_LORA_SCALE:
            raise AdapterError(f"{where}: {name} = {alpha!r} with r = {rank} scales the update by {scale:.3g}, "
                               f"above {MAX_LORA_SCALE:g}; no sane recipe trains that, re-train the adapter")
    dropout = config.get("lora_dropout", 0.0)
    if not isinstance(dropout, int | float) or isinstance(dropout, bool) or not 0 <= dropout < 1:
        raise AdapterError(f"{where}: lora_dropout = {dropout!r}; it must be a probability in [0, 1)")


def _adapter_tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    weights = path / WEIGHT_FILES[0]
    try:
        if weights.is_file():
            from safetensors import safe_open

            with safe_open(str(weights), framework="pt") as f:
                return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        import torch

        state = torch.load(path / WEIGHT_FILES[1], map_location="cpu", weights_only=True)
        return {k: tuple(v.shape) for k, v in state.items()}
    except Exception as exc:  # any reader error means the file cannot be loaded: say which and why
        raise AdapterError(f"{path}: adapter weights cannot be read ({type(exc).__name__}: {exc}); "
                           "the file is corrupt or truncated") from None


def _base_tensor_shapes(base: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    index = base / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.is_file() else [
        p.name for p in base.glob("*.safetensors")]
    if not files:
        raise AdapterError(f"{base}: no .safetensors weights; cannot check adapters against this base model")
    shapes: dict[str, tuple[int, ...]] = {}
    for name in files:
        with safe_open(str(base / name), framework="pt") as f:
            shapes.update({k: tuple(f.get_slice(k).get_shape()) for k in f.keys()})
    return shapes


def _check_version(version: str) -> None:
    if not isinstance(version, str) or not is_version(version):
        raise AdapterError(f"adapter version {version!r} is not of the form vK (v1, v2, ...)")


def _next_version(settings: Settings) -> str:
    """After every version on disk and in the table (a directory left by a crash still takes its name)."""
    with connect(settings, read_only=True) as con:
        registered = [v for (v,) in con.execute("SELECT version FROM adapters").fetchall()]
    return next_version([p.name for p in settings.adapters_dir.iterdir()] + registered)


def _event(con: Any, version: str, from_status: str | None, to_status: str, reason: str) -> None:
    at = now()
    con.execute(
        "INSERT INTO adapter_events (id, version, from_status, to_status, reason, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        [content_id(version, from_status, to_status, at.isoformat()), version, from_status, to_status, reason, at],
    )

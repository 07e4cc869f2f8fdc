"""Deploy and roll back adapter versions: the same functions for the CLI, the Prefect flow and tests.

``deploy`` asks a running model server (its admin API) to load, smoke-test and promote a version, or
registers it with a vLLM server (``target="vllm"``); only when the target accepted it is the change
recorded in the warehouse: a ``deployments`` row, the version marked ``production`` and the one it
replaced ``retired``. A refused deployment is recorded as ``failed`` and raises :class:`DeployError`.
The server itself never opens the warehouse; these functions run in the caller's process.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from flywheel.settings import Settings
from flywheel.warehouse import connect, content_id, now
from serving.vllm import VllmClient, VllmError
from training import registry


class DeployError(RuntimeError):
    """The target refused or could not be reached; the message says which and why."""


def default_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.serve.host in ("0.0.0.0", "::") else settings.serve.host
    return f"http://{host}:{settings.serve.port}"


def deploy(settings: Settings, version: str, url: str | None = None, target: str = "local",
           vllm_adapter_root: str | None = None) -> dict[str, Any]:
    """Make the registered ``version`` production on the server at ``url``; returns what the target reported."""
    url = url or default_url(settings)
    previous = last_deployed(settings, target)
    try:
        try:
            registry.adapter_status(settings, version)  # registered: unknown versions never reach a server
            path = registry.adapter_path(settings, version)
        except registry.AdapterError as exc:
            raise DeployError(str(exc)) from None
        if target == "vllm":
            lora_path = f"{vllm_adapter_root.rstrip('/')}/{version}" if vllm_adapter_root else str(path)
            try:
                result = VllmClient(url).deploy(version, lora_path, previous)
            except VllmError as exc:
                raise DeployError(str(exc)) from None
        elif target == "local":
            result = _admin_call(settings, url, f"/admin/promote/{version}")
            previous = result.get("previous") or previous
        else:
            raise DeployError(f"--target {target!r}: use local (the flywheel model server) or vllm")
    except DeployError as exc:
        _record(settings, version, target, "promote", "failed", {"url": url, "error": str(exc)})
        raise
    _record(settings, version, target, "promote", "succeeded", {"url": url, **result})
    return {"version": version, "previous": previous, **result}


def rollback(settings: Settings, url: str | None = None) -> dict[str, Any]:
    """Ask the server to go back to its previous production adapter and record it."""
    url = url or default_url(settings)
    try:
        result = _admin_call(settings, url, "/admin/rollback")
    except DeployError as exc:
        _record(settings, None, "local", "rollback", "failed", {"url": url, "error": str(exc)})
        raise
    version, retired = result["production"], result.get("retired")
    _record(settings, version, "local", "rollback", "succeeded", {"url": url, **result})
    if version is None and retired:  # back on the base model: the rolled-back adapter leaves production
        registry.set_status(settings, retired, "retired", reason=f"rolled back to the base model ({url})")
    return {"version": version, "retired": retired, **result}


def last_deployed(settings: Settings, target: str) -> str | None:
    """The version of the last successful deployment to ``target``: the rollback target there."""
    with connect(settings, read_only=True) as con:
        row = con.execute("SELECT adapter_version FROM deployments WHERE target = ? AND status = 'succeeded' "
                          "ORDER BY created_at DESC LIMIT 1", [target]).fetchone()
    return row[0] if row else registry.production_version(settings)


def _admin_call(settings: Settings, url: str, path: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {settings.serve.admin_key.get_secret_value()}"}
    try:
        response = httpx.post(url.rstrip("/") + path, headers=headers, timeout=300)
    except httpx.HTTPError as exc:
        raise DeployError(f"no model server answering at {url} ({exc}); start it with `flywheel serve` "
                          "or pass --url") from None
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text
        raise DeployError(f"{url}{path}: HTTP {response.status_code}: {message}")
    return response.json()


def _record(settings: Settings, version: str | None, target: str, action: str, status: str,
            detail: dict[str, Any]) -> None:
    """A deployments row; on success ``version`` becomes the registry's production adapter (the one
    before it is retired and the change lands in ``adapter_events``, the registry's rollback history)."""
    if status == "succeeded" and version is not None:
        registry.set_status(settings, version, "production", reason=f"{action} on {target} ({detail['url']})")
    at = now()
    with connect(settings) as con:
        con.execute(
            "INSERT INTO deployments (id, adapter_version, target, action, status, detail, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [content_id(version, target, action, status, at.isoformat()), version, target, action, status,
             json.dumps(detail, default=str), at])

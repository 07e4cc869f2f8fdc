"""Client for a running vLLM server's runtime LoRA API: the deploy target for serving at scale.

vLLM (started with ``--enable-lora`` and ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``) documents:

* ``POST /v1/load_lora_adapter``   body ``{"lora_name": ..., "lora_path": ...}`` -> 200, plain-text
  success message; 400 when the name is already loaded or a field is missing.
* ``POST /v1/unload_lora_adapter`` body ``{"lora_name": ...}`` -> 200; 404 when the name is unknown.
* ``GET /v1/models`` lists the base model and each LoRA adapter (``parent`` names its base model).

Each adapter version is loaded under its own name (``flywheel-v3``), never replacing a name in place,
so requests already running on the old version finish on it. After loading a new version the client
keeps it and the previous production version (the rollback target) and unloads older ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from flywheel.versions import is_version, version_number

NAME_PREFIX = "flywheel-"


class VllmError(RuntimeError):
    pass


def adapter_name(version: str) -> str:
    return f"{NAME_PREFIX}{version}"


@dataclass
class VllmClient:
    base_url: str
    api_key: str | None = None
    timeout: float = 120.0

    def _request(self, method: str, path: str, json: dict[str, Any] | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            return httpx.request(method, self.base_url.rstrip("/") + path, json=json, headers=headers,
                                 timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise VllmError(f"vLLM server at {self.base_url} did not answer {method} {path}: {exc}") from None

    def loaded_versions(self) -> list[str]:
        """Flywheel adapter versions the server has loaded, oldest first."""
        response = self._request("GET", "/v1/models")
        if response.status_code != 200:
            raise VllmError(f"GET /v1/models: HTTP {response.status_code}: {_message(response)}")
        names = [m.get("id", "") for m in response.json().get("data", []) if m.get("parent")]
        versions = [n.removeprefix(NAME_PREFIX) for n in names if n.startswith(NAME_PREFIX)]
        return sorted((v for v in versions if is_version(v)), key=version_number)

    def load(self, version: str, path: str) -> bool:
        """Load ``version`` from ``path`` (as the vLLM host sees it); False when it was loaded already."""
        name = adapter_name(version)
        response = self._request("POST", "/v1/load_lora_adapter", {"lora_name": name, "lora_path": path})
        if response.status_code == 200:
            return True
        if response.status_code == 400 and "already been loaded" in _message(response):
            return False
        raise VllmError(f"vLLM refused to load {name} from {path}: HTTP {response.status_code}: {_message(response)}")

    def unload(self, version: str) -> bool:
        name = adapter_name(version)
        response = self._request("POST", "/v1/unload_lora_adapter", {"lora_name": name})
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise VllmError(f"vLLM refused to unload {name}: HTTP {response.status_code}: {_message(response)}")

    def deploy(self, version: str, path: str, previous: str | None) -> dict[str, Any]:
        """Load ``version``, then unload every flywheel version except it and ``previous``."""
        newly_loaded = self.load(version, path)
        keep = {version, previous}
        unloaded = [v for v in self.loaded_versions() if v not in keep and self.unload(v)]
        return {"target": "vllm", "url": self.base_url, "name": adapter_name(version),
                "loaded": newly_loaded, "kept": sorted(v for v in keep if v), "unloaded": unloaded}


def _message(response: httpx.Response) -> str:
    """vLLM answers errors as JSON (``{"error": {"message"}}`` or, older, ``{"message"}``) or plain text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        return str(inner.get("message", body))
    return str(body)

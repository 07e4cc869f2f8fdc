"""`flywheel deploy --target vllm` against a small stand-in for vLLM's runtime LoRA API.

vLLM cannot run here (no GPU), so this server implements the endpoints as vLLM documents them
(``--enable-lora`` with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``): ``POST /v1/load_lora_adapter``,
``POST /v1/unload_lora_adapter`` and ``GET /v1/models``, with vLLM's status codes and messages.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from serving_fixtures import make_adapter, serving_settings, small_base_model  # noqa: F401

BASE_MODEL = "lumen-tiny"


def fake_vllm(loaded: dict[str, str], calls: list[tuple[str, str]]) -> FastAPI:
    app = FastAPI()

    def error(status: int, message: str, kind: str) -> JSONResponse:
        return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": status}},
                            status_code=status)

    @app.post("/v1/load_lora_adapter")
    async def load(body: dict):
        name, path = body.get("lora_name"), body.get("lora_path")
        calls.append(("load", name))
        if not name or not path:
            return error(400, "Both 'lora_name' and 'lora_path' must be provided.", "BadRequestError")
        if name in loaded:
            return error(400, f"The lora adapter '{name}' has already been loaded.", "BadRequestError")
        if not (Path(path) / "adapter_config.json").is_file():
            return error(400, f"Loading lora {name} failed: No adapter found for {path}", "BadRequestError")
        loaded[name] = path
        return PlainTextResponse(f"Success: LoRA adapter '{name}' added successfully.")

    @app.post("/v1/unload_lora_adapter")
    async def unload(body: dict):
        name = body.get("lora_name")
        calls.append(("unload", name))
        if name not in loaded:
            return error(404, f"The lora adapter '{name}' cannot be found.", "NotFoundError")
        del loaded[name]
        return PlainTextResponse(f"Success: LoRA adapter '{name}' removed successfully.")

    @app.get("/v1/models")
    async def models():
        cards = [{"id": BASE_MODEL, "object": "model", "owned_by": "vllm", "root": BASE_MODEL, "parent": None}]
        cards += [{"id": name, "object": "model", "owned_by": "vllm", "root": path, "parent": BASE_MODEL}
                  for name, path in loaded.items()]
        return {"object": "list", "data": cards}

    return app


@pytest.fixture
def vllm(settings):
    import uvicorn

    loaded = {"other-team-adapter": "/models/other"}
    calls: list[tuple[str, str]] = []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(fake_vllm(loaded, calls), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", loaded, calls
    server.should_exit = True
    thread.join(30)
    sock.close()


@pytest.fixture
def registry(settings, small_base_model):  # noqa: F811
    settings = serving_settings(settings.home, small_base_model)
    for n in (1, 2, 3):
        make_adapter(settings, f"v{n}", seed=n)
    return settings


def test_vllm_deploys_versioned_names_and_unloads_the_version_before_last(registry, vllm):
    from flywheel.warehouse import connect
    from serving.deploy import DeployError, deploy

    url, loaded, calls = vllm
    deploy(registry, "v1", url=url, target="vllm")
    deploy(registry, "v2", url=url, target="vllm")
    assert set(loaded) == {"other-team-adapter", "flywheel-v1", "flywheel-v2"}
    result = deploy(registry, "v3", url=url, target="vllm")
    assert result["unloaded"] == ["v1"] and result["previous"] == "v2"
    assert set(loaded) == {"other-team-adapter", "flywheel-v2", "flywheel-v3"}  # others' adapters untouched
    assert loaded["flywheel-v3"] == str(registry.adapters_dir / "v3")
    assert deploy(registry, "v3", url=url, target="vllm")["loaded"] is False  # redeploy: already loaded, fine

    make_adapter(registry, "v4", seed=4)
    with pytest.raises(DeployError, match="vLLM refused to load flywheel-v4"):
        deploy(registry, "v4", url=url, target="vllm", vllm_adapter_root="/mnt/adapters")
    assert ("load", "flywheel-v4") in calls and "flywheel-v4" not in loaded
    with connect(registry, read_only=True) as con:
        rows = con.execute("SELECT adapter_version, target, status FROM deployments ORDER BY created_at").fetchall()
        production = con.execute("SELECT version FROM adapters WHERE status = 'production'").fetchall()
    assert rows[-1] == ("v4", "vllm", "failed") and [r[2] for r in rows[:-1]] == ["succeeded"] * 4
    assert production == [("v3",)]


def test_vllm_unreachable_is_a_clear_error(registry):
    from serving.deploy import DeployError, deploy

    with pytest.raises(DeployError, match="not registered"):
        deploy(registry, "v7", url="http://127.0.0.1:9", target="vllm")
    with pytest.raises(DeployError, match="did not answer"):
        deploy(registry, "v1", url="http://127.0.0.1:9", target="vllm")

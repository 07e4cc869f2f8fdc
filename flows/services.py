"""Start (or find) the local services the demo and `flywheel flows serve` need: Prefect server and model server.

Each runs as its own process with its logs under ``FLYWHEEL_HOME/logs``; a service already answering on
its port is reused rather than started twice (a demo run with ``--keep-running`` leaves them up).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from flywheel.settings import Settings

PREFECT_HOST, PREFECT_PORT = "127.0.0.1", 4200


@dataclass
class Service:
    name: str
    url: str
    process: subprocess.Popen | None  # None: found already running, not ours to stop

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def answering(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _start(name: str, command: list[str], health_url: str, log: Path, env: dict[str, str], timeout: float) -> Service:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        process = subprocess.Popen(command, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode}; see {log}")
        if answering(health_url):
            return Service(name, health_url.rsplit("/", 1)[0], process)
        time.sleep(0.5)
    process.terminate()
    raise RuntimeError(f"{name} did not answer {health_url} within {timeout:.0f}s; see {log}")


def prefect_env(settings: Settings) -> dict[str, str]:
    """Environment that points Prefect clients and the server at the local UI server and its SQLite home."""
    return {
        "PREFECT_HOME": str((settings.home / "prefect").resolve()),
        "PREFECT_API_URL": f"http://{PREFECT_HOST}:{PREFECT_PORT}/api",
        "PREFECT_SERVER_API_HOST": PREFECT_HOST,
        "PREFECT_SERVER_API_PORT": str(PREFECT_PORT),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    }


def start_prefect_server(settings: Settings) -> Service:
    """The Prefect server with its UI on http://127.0.0.1:4200 (SQLite under FLYWHEEL_HOME/prefect)."""
    health = f"http://{PREFECT_HOST}:{PREFECT_PORT}/api/health"
    if answering(health):
        return Service("prefect server", f"http://{PREFECT_HOST}:{PREFECT_PORT}", None)
    env = {**os.environ, **prefect_env(settings)}
    prefect = str(Path(sys.executable).with_name("prefect"))
    service = _start("prefect server", [prefect, "server", "start"], health, settings.home / "logs" / "prefect.log",
                     env, timeout=120)
    service.url = f"http://{PREFECT_HOST}:{PREFECT_PORT}"
    return service


def start_model_server(settings: Settings) -> Service:
    """``flywheel serve`` on the configured host and port."""
    host = "127.0.0.1" if settings.serve.host in ("0.0.0.0", "::") else settings.serve.host
    health = f"http://{host}:{settings.serve.port}/health"
    if answering(health):
        return Service("model server", f"http://{host}:{settings.serve.port}", None)
    flywheel = str(Path(sys.executable).with_name("flywheel"))
    env = {**os.environ, "FLYWHEEL_HOME": str(settings.home.resolve())}
    service = _start("model server", [flywheel, "serve", "--host", settings.serve.host, "--port",
                                      str(settings.serve.port)], health, settings.home / "logs" / "serve.log",
                     env, timeout=300)
    service.url = f"http://{host}:{settings.serve.port}"
    return service

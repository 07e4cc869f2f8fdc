"""`flywheel serve` as a user runs it: a separate process, the warehouse's production adapter, bind warnings."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from serving_fixtures import make_adapter, serving_settings, small_base_model  # noqa: F401


def test_bind_warnings_only_off_loopback(tmp_path, small_base_model):  # noqa: F811
    from serving.http import model_server_warnings as bind_warnings

    settings = serving_settings(tmp_path, small_base_model)
    assert bind_warnings(settings, "127.0.0.1") == [] and bind_warnings(settings, "::1") == []
    assert bind_warnings(settings, "localhost") == []
    loud = bind_warnings(settings, "0.0.0.0")
    assert len(loud) == 2 and "no inference key" in loud[0] and "no feedback key" in loud[1]
    keyed = serving_settings(tmp_path, small_base_model, api_key="a", feedback_key="b", admin_key="flywheel-admin")
    assert bind_warnings(keyed, "10.0.0.5") == [
        "binding to 10.0.0.5: the admin key is the public default: anyone can swap the production adapter"]


@pytest.mark.slow
def test_serve_starts_on_the_warehouse_production_adapter(tmp_path, small_base_model):  # noqa: F811
    from training.registry import set_status

    settings = serving_settings(tmp_path / "home", small_base_model)
    make_adapter(settings, "v1", seed=1)
    make_adapter(settings, "v2", seed=2)
    set_status(settings, "v2", "production", reason="gate passed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "FLYWHEEL_HOME": str(settings.home), "FLYWHEEL_TRAIN__BASE_MODEL": str(small_base_model),
           "FLYWHEEL_SERVE__TORCH_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "flywheel.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, proc.communicate()[0]
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "flywheel serve did not answer within 180 s"
                time.sleep(0.2)
        assert health["production"] == "v2" and health["loaded"] == ["v2"]
        reply = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=60,
                           json={"model": "production", "max_tokens": 2,
                                 "messages": [{"role": "user", "content": "hi"}]}).json()
        assert reply["model"] == "v2"
    finally:
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, output
    assert "WARNING" not in output  # loopback bind: nothing to warn about
    assert list(settings.spool_dir.glob("server-*.jsonl"))

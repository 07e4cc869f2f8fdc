"""Shared test fixtures: every test gets its own FLYWHEEL_HOME; nothing touches ~/.prefect or a hub."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Before anything imports prefect or transformers: an isolated Prefect home, offline hubs.
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="flywheel-tests-"))
os.environ["PREFECT_HOME"] = str(_SESSION_DIR / "prefect")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.pop("FLYWHEEL_CONFIG", None)

ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh FLYWHEEL_HOME for one test."""
    path = tmp_path / "flywheel-home"
    monkeypatch.setenv("FLYWHEEL_HOME", str(path))
    monkeypatch.chdir(tmp_path)
    return path


@pytest.fixture
def settings(home: Path):
    from flywheel.settings import load_settings

    s = load_settings()
    s.ensure_dirs()
    return s


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests save screenshots and reports a person may want to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def prefect_server():
    """One real, temporary Prefect server (SQLite) for the whole test session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


def read_artifacts(key: str) -> list:
    """Artifacts with this key from the running Prefect server, newest first."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    async def fetch():
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), sort=ArtifactSort.CREATED_DESC)

    return asyncio.run(fetch())


def artifact_data(key: str):
    """The newest artifact's data: a table as a list of row dicts, markdown as text."""
    import json

    data = read_artifacts(key)[0].data
    if isinstance(data, str) and data[:1] in "[{":
        return json.loads(data)
    return data


class NetworkBlocked(AssertionError):
    """Raised by the ``no_network`` guard: the code under test tried to open a connection."""


@pytest.fixture(scope="module")
def no_network():
    """Block every outgoing connection (and name lookup) for a module: offline stages must not notice."""
    import socket

    def refuse(*args, **kwargs):
        raise NetworkBlocked(f"network call attempted: {args[1:] or kwargs}")

    saved = socket.socket.connect, socket.socket.connect_ex, socket.create_connection, socket.getaddrinfo
    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse
    yield
    socket.socket.connect, socket.socket.connect_ex, socket.create_connection, socket.getaddrinfo = saved

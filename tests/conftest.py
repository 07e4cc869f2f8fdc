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

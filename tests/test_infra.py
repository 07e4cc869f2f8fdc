"""infra/: the compose file is valid against the Compose specification's JSON schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

INFRA = Path(__file__).parents[1] / "infra"


def validator() -> jsonschema.Draft201909Validator:
    """The schema declares draft 2019-09 (with a trailing '#' jsonschema does not recognise)."""
    return jsonschema.Draft201909Validator(json.loads((INFRA / "compose-spec.schema.json").read_text()))


def test_compose_file_matches_compose_spec():
    compose = yaml.safe_load((INFRA / "docker-compose.yml").read_text())
    validator().validate(compose)
    assert {"postgres", "prefect-server", "cpu-worker", "gpu-worker", "model-server", "vllm"} <= set(compose["services"])


def test_compose_schema_rejects_a_broken_file():
    broken = {"services": {"x": {"image": "a", "ports": "not-a-list", "bogus_key": 1}}}
    errors = {e.message for e in validator().iter_errors(broken)}
    assert any("bogus_key" in m for m in errors) and any("not-a-list" in m for m in errors)

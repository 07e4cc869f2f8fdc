"""Raw-text retention: `flywheel purge` blanks old interaction text and nothing else."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import orjson
from typer.testing import CliRunner

from collectors.ingest import collect
from flywheel.cli import app
from flywheel.warehouse import connect


def write_interactions(path, ages_days: dict[str, int]) -> None:
    now = datetime.now(UTC)
    with path.open("wb") as fh:
        for rid, age in ages_days.items():
            fh.write(orjson.dumps({
                "id": rid, "timestamp": (now - timedelta(days=age)).isoformat(), "model": "tiny",
                "messages": [{"role": "user", "content": f"Hi, I'm Dana Whitfield ({rid}), call +1 415 555 0100"}],
                "response": "Sure, Dana.",
            }) + b"\n")


def rows(settings):
    with connect(settings) as con:
        return {r[0]: r[1:] for r in con.execute(
            "SELECT id, messages, response, raw_purged_at, model FROM interactions ORDER BY id").fetchall()}


def test_purge_old_raw_text_only_and_idempotently(settings, tmp_path):
    src = tmp_path / "traffic.jsonl"
    write_interactions(src, {"old-1": 45, "old-2": 31, "fresh": 2})
    collect(settings, sources=[src])
    with connect(settings) as con:   # one raw quarantined line, old enough to purge as well
        con.execute("INSERT INTO quarantine (id, stage, reason, raw, created_at) VALUES "
                    "('q1', 'collect', 'bad', 'Dana Whitfield +1 415 555 0100', now() - INTERVAL 40 DAY)")

    result = CliRunner().invoke(app, ["purge", "--json"])          # default retention: 30 days
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"interactions_purged": 2, "quarantine_raw_purged": 1, "older_than_days": 30}
    after = rows(settings)
    for rid in ("old-1", "old-2"):
        messages, response, purged_at, model = after[rid]
        assert messages is None and response is None and purged_at is not None and model == "tiny"
    assert "Dana Whitfield" in after["fresh"][0] and after["fresh"][2] is None
    with connect(settings) as con:
        assert con.execute("SELECT raw FROM quarantine WHERE id = 'q1'").fetchone()[0] is None

    again = CliRunner().invoke(app, ["purge", "--json"])
    assert json.loads(again.output)["interactions_purged"] == 0
    assert rows(settings)["old-1"][2] == after["old-1"][2]            # first purge time kept

    everything = CliRunner().invoke(app, ["purge", "--older-than-days", "0", "--json"])
    assert json.loads(everything.output)["interactions_purged"] == 1
    bad = CliRunner().invoke(app, ["purge", "--older-than-days", "-1"])
    assert bad.exit_code == 2 and ">= 0" in bad.output

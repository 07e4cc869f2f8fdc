"""Collectors: both interaction shapes, feedback, idempotency, incremental files, every kind of bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from collectors import ingest
from collectors.ingest import collect
from demo import sample_data
from flywheel.cli import app
from flywheel.spool import SpoolWriter
from flywheel.warehouse import connect


def counts(settings) -> dict[str, int]:
    with connect(settings) as con:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("interactions", "feedback", "quarantine")}


def reasons(settings) -> list[tuple[int, str]]:
    with connect(settings) as con:
        return con.execute("SELECT line, reason FROM quarantine ORDER BY line").fetchall()


def test_both_shapes_and_feedback_are_ingested_once(settings, tmp_path):
    records, feedback = sample_data.interactions(120, seed=3)
    inbox = tmp_path / "inbox"
    sample_data.write_jsonl(inbox / "a.jsonl", records)
    sample_data.write_jsonl(inbox / "fb.jsonl", feedback)

    first = collect(settings, [inbox])
    assert first.interactions_new == 120
    assert first.feedback_new == len(feedback)
    assert first.quarantined_total == 0

    # Same data again, also under another name: nothing changes.
    sample_data.write_jsonl(inbox / "copy.jsonl", records)
    second = collect(settings, [inbox])
    assert second.interactions_new == 0 and second.feedback_new == 0
    assert second.duplicates_skipped == 120
    assert counts(settings) == {"interactions": 120, "feedback": len(feedback), "quarantine": 0}

    with connect(settings) as con:
        openai_row = con.execute("SELECT model, response, prompt_tokens, messages FROM interactions "
                                 "WHERE id = 'chatcmpl-3-000000'").fetchone()
    assert openai_row[0] == "lumen-support" and openai_row[2] == 20
    assert json.loads(openai_row[3])[-1]["role"] == "user"


def test_content_hash_id_when_no_id(settings, tmp_path):
    rec = {"timestamp": "2026-11-02T10:00:00Z", "messages": [{"role": "user", "content": "hi"}], "response": "hello"}
    path = sample_data.write_jsonl(tmp_path / "x.jsonl", [rec, dict(rec)])
    summary = collect(settings, [path])
    assert summary.interactions_new == 1 and summary.duplicates_skipped == 1
    with connect(settings) as con:
        (iid,) = con.execute("SELECT id FROM interactions").fetchone()
    assert iid.startswith("ix-")


def test_feedback_before_its_interaction(settings, tmp_path):
    records, feedback = sample_data.interactions(30, seed=5)
    collect(settings, [sample_data.write_jsonl(tmp_path / "fb.jsonl", feedback)])
    collect(settings, [sample_data.write_jsonl(tmp_path / "ix.jsonl", records)])
    with connect(settings) as con:
        joined = con.execute("SELECT count(*) FROM feedback f JOIN interactions i ON i.id = f.interaction_id"
                             ).fetchone()[0]
    assert joined == len(feedback)


BAD_LINES = [
    (b'{"id": "x1", "messages": [{"role": "user", "content": "hi"}], "response": "ok"', "invalid JSON"),
    (b'{"id": "x2", "messages": [{"role": "user", "content": 5}], "response": "ok"}', "messages.0.content"),
    (b'{"id": "x3", "messages": [{"role": "wizard", "content": "hi"}], "response": "ok"}', "unknown role"),
    (b'{"interaction_id": "x1", "kind": "emoji", "value": 1}', "unknown feedback kind"),
    (b'{"interaction_id": "x1", "kind": "rating", "value": 9}', "rating must be a number from 1 to 5"),
    (b'{"kind": "thumb", "value": 1}', "feedback.interaction_id"),
    (b'{"id": "x4", "messages": [{"role": "user", "content": "caf\xe9"}], "response": "ok"}', "invalid UTF-8"),
    (b'{"id": "x5", "messages": [{"role": "user", "content": "a\x00b"}], "response": "ok"}', "NUL byte"),
    (b'{"id": "x6", "messages": [{"role": "user", "content": "' + b"y" * 3000 + b'"}], "response": "ok"}',
     "record too large"),
    (b'["not", "an", "object"]', "expected a JSON object"),
    (b'{"hello": "world"}', "not an interaction"),
    (b'{"interaction_id": "x1", "kind": "correction"}', "correction needs"),
    (b'{"id": "x7", "messages": [], "response": "ok"}', "messages"),
]


def test_every_bad_line_is_quarantined_with_its_reason(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("FLYWHEEL_COLLECT__MAX_RECORD_BYTES", "2000")
    from flywheel.settings import load_settings

    settings = load_settings()
    good = orjson.dumps({"id": "good-1", "messages": [{"role": "user", "content": "hi"}], "response": "hey"})
    path = tmp_path / "torture.jsonl"
    path.write_bytes(b"\n".join([good] + [line for line, _ in BAD_LINES] + [b"", good]) + b"\n")

    summary = collect(settings, [path])
    assert summary.interactions_new == 1
    assert summary.duplicates_skipped == 1
    assert summary.quarantined_total == len(BAD_LINES)
    stored = reasons(settings)
    for (line_no, reason), (_, expected) in zip(stored, BAD_LINES, strict=True):
        assert expected in reason, (line_no, reason)
        assert "\n" not in reason
    assert [line for line, _ in stored] == list(range(2, 2 + len(BAD_LINES)))
    # A second run adds nothing: not the good records, not the quarantine rows.
    again = collect(settings, [path])
    assert again.records_read == 0
    assert counts(settings) == {"interactions": 1, "feedback": 0, "quarantine": len(BAD_LINES)}


def test_quarantine_cli_lists_and_shows(settings, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"id": "z", "messages": [{"role": "robot", "content": "x"}], "response": "y"}\n')
    collect(settings, [path])
    runner = CliRunner()
    listed = runner.invoke(app, ["quarantine", "list"], env={"COLUMNS": "300"})
    assert listed.exit_code == 0 and "unknown" in listed.output and "bad.jsonl:1" in listed.output
    with connect(settings) as con:
        (qid,) = con.execute("SELECT id FROM quarantine").fetchone()
    shown = runner.invoke(app, ["quarantine", "show", qid[:10]])
    assert shown.exit_code == 0 and '"robot"' in shown.output and "bad.jsonl:1" in shown.output


def test_growing_file_is_read_from_where_it_stopped(settings, tmp_path):
    records, _ = sample_data.interactions(5, seed=9, shape="flat")
    lines = [orjson.dumps(r) for r in records]
    path = tmp_path / "live.jsonl"
    path.write_bytes(lines[0] + b"\n" + lines[1] + b"\n" + lines[2][:40])  # writer mid-line

    first = collect(settings, [path])
    assert first.interactions_new == 2 and first.pending_partial_lines == 1
    assert "truncated final line" in reasons(settings)[0][1]  # quarantined, in case it never completes
    assert collect(settings, [path]).records_read == 1  # unchanged: the same tail, the same quarantine row
    assert counts(settings)["quarantine"] == 1

    with open(path, "ab") as fh:
        fh.write(lines[2][40:] + b"\n" + lines[3] + b"\n" + lines[4])  # last one: complete, no newline
    second = collect(settings, [path])
    assert second.interactions_new == 3 and second.quarantined_total == 0
    assert counts(settings) == {"interactions": 5, "feedback": 0, "quarantine": 0}  # the tail's row is gone


def test_truncated_file_is_quarantined_once(settings, tmp_path):
    path = tmp_path / "old.jsonl"
    path.write_bytes(b'{"id": "a", "messages": [{"role": "user", "content": "q"}], "response": "r"}\n{"id": "b", "mes')
    summary = collect(settings, [path])
    assert summary.interactions_new == 1 and summary.quarantined_total == 1
    assert "truncated final line" in reasons(settings)[0][1]
    collect(settings, [path])
    assert counts(settings) == {"interactions": 1, "feedback": 0, "quarantine": 1}


def test_gzip_and_parquet_and_truncated_gzip(settings, tmp_path):
    records, feedback = sample_data.interactions(40, seed=11, shape="flat")
    gz = tmp_path / "a.jsonl.gz"
    with gzip.open(gz, "wb") as fh:
        fh.write(b"".join(orjson.dumps(r) + b"\n" for r in records[:20]))
    flat = [{**r, "messages": json.dumps(r["messages"])} for r in records[20:]]
    pq.write_table(pa.Table.from_pylist(flat), tmp_path / "b.parquet")
    broken = tmp_path / "c.jsonl.gz"
    broken.write_bytes(gz.read_bytes()[:-30])
    (tmp_path / "d.parquet").write_bytes(b"PAR1 this is not parquet")

    summary = collect(settings, [tmp_path])
    assert summary.interactions_new == 40
    why = [r for _, r in reasons(settings)]
    assert any("truncated or corrupt gzip" in r for r in why)
    assert any("unreadable Parquet file" in r for r in why)
    # Unchanged whole-file sources are not read again.
    assert collect(settings, [tmp_path]).records_read == 0


def test_failure_half_way_leaves_no_partial_batch(settings, tmp_path, monkeypatch):
    records, _ = sample_data.interactions(60, seed=13, shape="flat")
    path = sample_data.write_jsonl(tmp_path / "f.jsonl", records)
    monkeypatch.setattr(settings.collect, "batch_rows", 25)
    real = ingest.quarantine
    calls = {"n": 0}

    def failing_quarantine(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # inside the second batch's transaction
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest, "quarantine", failing_quarantine)
    with pytest.raises(RuntimeError):
        collect(settings, [path])
    assert counts(settings)["interactions"] == 25  # the first batch only, not half of the second
    with connect(settings) as con:
        assert con.execute('SELECT line FROM ingest_state').fetchone()[0] == 25

    monkeypatch.setattr(ingest, "quarantine", real)
    resumed = collect(settings, [path])
    assert resumed.interactions_new == 35 and resumed.duplicates_skipped == 0
    assert counts(settings)["interactions"] == 60


def test_schema_upgrade_in_place(settings, tmp_path):
    import duckdb

    from flywheel import warehouse

    migration = tmp_path / "migrations"
    migration.mkdir()
    for m in warehouse.migrations():
        (migration / f"{m.version:04d}_{m.name}.sql").write_text(m.sql)
    con = duckdb.connect(str(settings.warehouse_path))
    warehouse.migrate(con, upto=1)
    con.execute("INSERT INTO interactions (id, messages, response) VALUES ('old', '[]', 'kept')")
    con.close()

    (migration / "9999_add_language.sql").write_text("ALTER TABLE interactions ADD COLUMN language VARCHAR;")
    original = warehouse.MIGRATIONS_DIR
    try:
        warehouse.MIGRATIONS_DIR = migration
        with connect(settings, read_only=True) as con:  # a reader of an old file upgrades it first
            assert warehouse.schema_version(con) == 9999
            assert con.execute("SELECT response, language FROM interactions").fetchone() == ("kept", None)
    finally:
        warehouse.MIGRATIONS_DIR = original


def test_spool_segments_are_ingested(settings):
    writer = SpoolWriter(settings.spool_dir, segment_bytes=2_000)
    records, feedback = sample_data.interactions(20, seed=17, shape="openai")
    for rec in records + feedback:
        writer.append(rec)
    writer.close()
    assert len(list(settings.spool_dir.glob("*.jsonl"))) > 1  # rotated
    summary = collect(settings)  # default sources: inbox + spool
    assert summary.interactions_new == 20 and summary.feedback_new == len(feedback)


def test_cli_collect_and_status_json(settings, tmp_path):
    sample_data.write_inbox(tmp_path / "in", n=50, seed=2)
    runner = CliRunner()
    result = runner.invoke(app, ["collect", "--source", str(tmp_path / "in"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["interactions_new"] == 50
    status = json.loads(runner.invoke(app, ["status", "--json"]).output)
    assert status["interactions"] == 50 and status["quarantine"] == 0 and status["feedback"] > 0
    table = runner.invoke(app, ["status"])
    assert "interactions" in table.output and "50" in table.output
    missing = runner.invoke(app, ["collect", "--source", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_config_show_masks_secrets(home, monkeypatch):
    monkeypatch.setenv("FLYWHEEL_SERVE__ADMIN_KEY", "very-secret-value")
    Path("flywheel.yaml").write_text("scrub:\n  seed: 99\n")
    out = CliRunner().invoke(app, ["config", "show"]).output
    assert "very-secret-value" not in out and "**********" in out
    assert "seed: 99" in out and str(home) in out



@pytest.mark.parametrize(("yaml_text", "said"), [
    ("scrub:\n  seeed: 7\n", "scrub.seeed: unknown key"),
    ("scrub:\n  default_operator: maks\n", "scrub.default_operator: Input should be 'surrogate'"),
    ("curate:\n  steps: [dedup, nosuch]\n", "curate.steps: 'nosuch' is neither a registered step"),
])
def test_a_bad_setting_ends_the_command_with_one_line_naming_the_key(home, yaml_text, said):
    """Not a pydantic traceback: one line on stderr that names the key, and exit status 2."""
    import subprocess
    import sys

    Path("flywheel.yaml").write_text(yaml_text)
    done = subprocess.run([sys.executable, "-m", "flywheel.cli", "curate"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and said in lines[0] and "Traceback" not in done.stderr, done.stderr

def test_unbuilt_stage_says_so(home):
    # Every stage command exists with --help.
    for command in ("collect", "curate", "scrub", "dedup", "hap", "train", "eval", "deploy", "rollback",
                    "serve", "review", "demo", "status"):
        assert CliRunner().invoke(app, [command, "--help"]).exit_code == 0, command

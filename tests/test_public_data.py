"""benchmarks/public_data.py: the converter that rebuilds the public benchmark data from git snapshots."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import public_data  # noqa: E402


def test_bio_tags_become_character_spans_and_a_stray_i_opens_a_span():
    row = public_data.bio_row(["Ana", "Lima", "met", "Bo", "in", "Rio"],
                              ["B-PER", "I-PER", "O", "I-PER", "O", "B-LOC"], " ")
    assert row["text"] == "Ana Lima met Bo in Rio"
    assert [(row["text"][s["start"]:s["end"]], s["label"]) for s in row["spans"]] == [
        ("Ana Lima", "PER"), ("Bo", "PER"), ("Rio", "LOC")]


def test_a_missing_snapshot_is_named_and_no_manifest_claims_the_data_is_there(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "public_data.py"), "--mirror",
                          str(tmp_path / "mirror"), "--out", str(tmp_path / "data"), "--groups", "en_pii"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert "fetch github:leondz/emerging_entities_17" in run.stdout + run.stderr
    assert not (tmp_path / "data" / "MANIFEST.md").exists()


def test_a_built_output_matches_its_source_rows(tmp_path):
    """A tiny snapshot of the WNUT-17 repository at the recorded commit is converted to jsonl rows."""
    repo = "leondz/emerging_entities_17"
    git_dir = tmp_path / "mirror" / repo.replace("/", "+") / "repo"
    work = tmp_path / "work"
    work.mkdir()
    (work / "wnut17train.conll").write_text("Ana\tB-person\nruns\tO\n\t\nhi\tO\n", encoding="utf-8")
    for name in ("emerging.dev.conll", "emerging.test.annotated"):
        (work / name).write_text("Bo\tB-person\n", encoding="utf-8")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "PATH": "/usr/bin:/bin"}
    subprocess.run(["git", "init", "-q", str(work)], check=True, env=env)
    subprocess.run(["git", "-C", str(work), "add", "."], check=True, env=env)
    subprocess.run(["git", "-C", str(work), "commit", "-qm", "fixture"], check=True, env=env)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(git_dir)], check=True, env=env)
    commit = subprocess.run(["git", "--git-dir", str(git_dir), "rev-parse", "HEAD"], check=True, env=env,
                            capture_output=True, text=True).stdout.strip()
    saved = public_data.COMMITS[repo]
    public_data.COMMITS[repo] = commit
    try:
        public_data.wnut17(public_data.Snapshots(tmp_path / "mirror"), public_data.Output(tmp_path / "data"))
    finally:
        public_data.COMMITS[repo] = saved
    rows = [json.loads(line) for line in (tmp_path / "data" / "wnut17" / "train.jsonl").read_text().splitlines()]
    assert rows == [{"text": "Ana runs", "spans": [{"start": 0, "end": 3, "label": "person"}]},
                    {"text": "hi", "spans": []}]


def test_a_dynahate_line_is_read_bare_or_unquoted():
    """DynBERT's text files quote a line only when it holds a double quote; its commas stay bare."""
    assert public_data.dynahate_line('they are lazy, all of them') == "they are lazy, all of them"
    assert public_data.dynahate_line('"I hate that people think ""all men are bad"""') == \
        'I hate that people think "all men are bad"'

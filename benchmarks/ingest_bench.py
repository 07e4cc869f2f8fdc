"""Ingest throughput: ``flywheel collect`` against what a user would write instead, same file, same run.

Contenders, all pinned to one core, loading the same JSONL file of interactions into a DuckDB table of
(id, timestamp, messages, response):

* ``flywheel collect``: pydantic validation of every record, stable ids, quarantine of bad lines, byte
  offsets for resuming, Arrow bulk upsert;
* ``json.loads`` + one Arrow insert: parse each line, pick the four fields, one ``INSERT ... SELECT`` from an
  Arrow table (no validation, no quarantine);
* DuckDB ``read_json``: DuckDB parses the file itself (``INSERT ... SELECT FROM read_json(...)``).

The baselines do less work than the collector (nothing is validated, a bad line stops them); the ratio says
what that work costs. Interactions are recombined from public conversations (see ``curate_bench.py``).

    .venv/bin/python benchmarks/ingest_bench.py [--rows 100000] [--data /work/data]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate_bench import conversation_pool, traffic  # noqa: E402

from collectors.ingest import collect  # noqa: E402
from flywheel.settings import load_settings  # noqa: E402

TABLE = "CREATE TABLE interactions (id VARCHAR PRIMARY KEY, ts VARCHAR, messages JSON, response VARCHAR)"


def json_loads_arrow(path: Path, db: Path) -> int:
    rows: dict[str, list] = {"id": [], "ts": [], "messages": [], "response": []}
    with open(path, "rb") as fh:
        for line in fh:
            rec = json.loads(line)
            rows["id"].append(rec["id"])
            rows["ts"].append(rec["timestamp"])
            rows["messages"].append(json.dumps(rec["messages"]))
            rows["response"].append(rec["response"])
    con = duckdb.connect(str(db))
    con.execute(TABLE)
    con.register("batch", pa.table(rows))
    con.execute("INSERT INTO interactions SELECT id, ts, messages, response FROM batch ON CONFLICT DO NOTHING")
    n = con.execute("SELECT count(*) FROM interactions").fetchone()[0]
    con.close()
    return n


def duckdb_read_json(path: Path, db: Path) -> int:
    con = duckdb.connect(str(db))
    con.execute(TABLE)
    con.execute(
        "INSERT INTO interactions SELECT id, timestamp, to_json(messages), response FROM read_json(?, "
        "format='newline_delimited', columns={'id': 'VARCHAR', 'timestamp': 'VARCHAR', "
        "'messages': 'STRUCT(role VARCHAR, content VARCHAR)[]', 'response': 'VARCHAR'}) ON CONFLICT DO NOTHING",
        [str(path)])
    n = con.execute("SELECT count(*) FROM interactions").fetchone()[0]
    con.close()
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--data", type=Path, default=Path("/work/data"))
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, for every contender
    records, _ = traffic(conversation_pool(args.data), args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        path = tmp_path / "week.jsonl"
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
        size = path.stat().st_size
        results = []
        for name, fn in (("json.loads + one Arrow insert", json_loads_arrow), ("DuckDB read_json", duckdb_read_json)):
            started = time.perf_counter()
            n = fn(path, tmp_path / f"{fn.__name__}.duckdb")
            results.append((name, n, time.perf_counter() - started))
        settings = load_settings(home=tmp_path / "home")
        started = time.perf_counter()
        summary = collect(settings, [path])
        results.append(("flywheel collect", summary.interactions_new, time.perf_counter() - started))
        assert summary.quarantined_total == 0 and all(n == len(records) for _, n, _ in results)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, one used; "
          f"Python {platform.python_version()}, DuckDB {duckdb.__version__}; {len(records):,} interactions, "
          f"{size / 2**20:.0f} MiB")
    ours = results[-1][2]
    for name, n, seconds in results:
        print(f"{name:32s} {n / seconds:10,.0f} interactions/s   flywheel collect x{seconds / ours:.2f}")


if __name__ == "__main__":
    main()

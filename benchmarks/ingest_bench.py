"""Ingest throughput: the collector vs a naive same-run baseline (json.loads + one INSERT per row).

    .venv/bin/python benchmarks/ingest_bench.py [--rows 100000] [--baseline-rows 5000]

Bar (Foundation issue): >= 20,000 interactions/s from JSONL on one core.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import duckdb

from collectors.ingest import collect
from demo import sample_data
from flywheel.settings import load_settings


def naive_ingest(path: Path, db: Path) -> int:
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE interactions (id VARCHAR PRIMARY KEY, ts VARCHAR, messages JSON, response VARCHAR)")
    n = 0
    with open(path) as fh:
        for line in fh:
            rec = json.loads(line)
            if "request" in rec:
                iid, msgs = rec["response"]["id"], rec["request"]["messages"]
                answer = rec["response"]["choices"][0]["message"]["content"]
            else:
                iid, msgs, answer = rec["id"], rec["messages"], rec["response"]
            con.execute("INSERT INTO interactions VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        [iid, rec.get("timestamp"), json.dumps(msgs), answer])
            n += 1
    con.close()
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--baseline-rows", type=int, default=5_000)
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, for both contenders
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        records, _ = sample_data.interactions(args.rows, seed=42)
        big = sample_data.write_jsonl(tmp_path / "big.jsonl", records)
        small = sample_data.write_jsonl(tmp_path / "small.jsonl", records[: args.baseline_rows])

        t0 = time.perf_counter()
        naive_n = naive_ingest(small, tmp_path / "naive.duckdb")
        naive_rate = naive_n / (time.perf_counter() - t0)

        settings = load_settings(home=tmp_path / "home")
        t0 = time.perf_counter()
        summary = collect(settings, [big])
        ours_rate = summary.interactions_new / (time.perf_counter() - t0)
        assert summary.interactions_new == args.rows and summary.quarantined_total == 0

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"naive json.loads + INSERT per row : {naive_rate:10,.0f} interactions/s ({naive_n:,} rows)")
    print(f"flywheel collect (Arrow bulk)     : {ours_rate:10,.0f} interactions/s ({args.rows:,} rows)")
    print(f"ratio                             : {ours_rate / naive_rate:10.1f}x   (bar: >= 20,000/s)")


if __name__ == "__main__":
    main()

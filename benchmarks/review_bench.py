"""Review page: what the stored scrubbed rendering saves per page view, against scrubbing on every view.

    .venv/bin/python benchmarks/review_bench.py [--interactions 600] [--repeats 5]

Traffic comes from ``demo.sample_data`` through the real collector and the real miner; the page is
the real app (FastAPI TestClient, signed in). Baseline, same run: the queue page when every view has
to scrub its items (the stored renderings are deleted before each view); then the same page read from
``review_scrubbed``. The scrubber is loaded before timing in both cases.
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from collectors.ingest import collect
from curation.mining import mine
from demo import sample_data
from flywheel.settings import load_settings
from flywheel.warehouse import connect
from serving.review.app import create_app
from serving.review.auth import add_user
from serving.review.routes.queue import PAGE_SIZE

PASSWORD = "benchmark password"


def timed_views(client: TestClient, settings, repeats: int, cold: bool) -> list[float]:
    times = []
    for _ in range(repeats):
        if cold:
            with connect(settings) as con:
                con.execute("DELETE FROM review_scrubbed")
        start = time.perf_counter()
        assert client.get("/").status_code == 200
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interactions", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(home=Path(tmp) / "home")
        settings.ensure_dirs()
        records, feedback = sample_data.interactions(args.interactions, seed=3)
        collect(settings, [sample_data.write_jsonl(settings.inbox_dir / "i.jsonl", records),
                           sample_data.write_jsonl(settings.inbox_dir / "f.jsonl", feedback)])
        mined = mine(settings)
        add_user(settings, "bench", "annotator", PASSWORD)
        client = TestClient(create_app(settings), base_url="http://127.0.0.1")
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
        client.post("/login", data={"username": "bench", "password": PASSWORD, "csrf_token": token})
        client.get("/")  # loads the scrubber (spaCy) once, outside the timings
        shown = min(PAGE_SIZE, mined.queued)
        cold = timed_views(client, settings, args.repeats, cold=True)
        warm = timed_views(client, settings, args.repeats, cold=False)
    cold_ms, warm_ms = statistics.median(cold) * 1000, statistics.median(warm) * 1000
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"queue page with {shown} items, median of {args.repeats} views")
    print(f"  baseline, scrub on every view: {cold_ms:8.1f} ms")
    print(f"  stored scrubbed rendering:     {warm_ms:8.1f} ms")
    print(f"  ratio: {cold_ms / warm_ms:.1f}x faster")


if __name__ == "__main__":
    main()

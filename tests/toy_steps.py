"""Curation steps that exist only for tests: how a user adds a step (one class, one line of settings)."""

from __future__ import annotations

import os
from pathlib import Path

from curation.step import Drop, Record, Step


class Shout(Step):
    """Drops examples whose last turn shouts (all capitals), counts the rest; per record, so it may run on shards."""

    name = "shout"

    def process(self, batch: list[Record]) -> list[Record | Drop]:
        results: list[Record | Drop] = []
        for record in batch:
            turns = record.get("messages") or record.get("chosen") or []
            last = turns[-1]["content"] if turns else ""
            if last.isupper():
                results.append(Drop("shouting", f"record {record.get('id')}"))
            else:
                self.count("calm", self.language(record))
                results.append(record)
        return results


class Logged(Step):
    """Writes every record id it sees to the file named by ``FLYWHEEL_TEST_LOG``, and fails on the record
    whose id is ``FLYWHEEL_TEST_FAIL_ON``: a crash in the middle of a run, for the checkpoint test."""

    name = "logged"

    def process(self, batch: list[Record]) -> list[Record | Drop]:
        if os.environ.get("FLYWHEEL_TEST_FAIL_ON") in {r["id"] for r in batch}:
            raise RuntimeError("worker lost")
        with Path(os.environ["FLYWHEEL_TEST_LOG"]).open("a") as log:
            log.writelines(f"{r['id']}\n" for r in batch)
        return [{**r, "seen_by": os.getpid()} for r in batch]

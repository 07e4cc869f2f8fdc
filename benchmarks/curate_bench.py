"""Curate a real-shaped week: interactions/s and peak memory of ``flywheel curate`` at 10k and 50k interactions.

Traffic is recombined from public conversations written by others (read from ``--data``, default /work/data,
laid out as benchmarks/DATA.md describes): English user/assistant turn pairs from ShareGPT, Chinese ones from
CrossWOZ, KdConv and the JDDC customer-service extract. Each interaction is one pair, sometimes with the
previous turn of its conversation as context, sometimes asked again (a repeat or a trivial variant), with a
person's name, e-mail or phone planted in one user turn in ten (Faker, in the turn's language). Feedback
follows the shape the flywheel sees: no feedback for most, thumbs up / 5-star ratings, thumbs down with a
correction (the pair's real answer; the logged response is then another pair's answer), regenerate.

Each size runs ``flywheel curate`` in a fresh FLYWHEEL_HOME (after ``flywheel collect``, timed apart), with
``curate.processes`` workers; ``--dask`` also runs the ``curate`` flow with its per-record steps on a local
two-worker Dask cluster. Peak memory is the largest sum over the curate process, its children and the Dask
workers, sampled every 0.5 s: RSS (shared pages counted once per process) and PSS (shared pages split).

    .venv/bin/python benchmarks/curate_bench.py [--sizes 10000 50000] [--processes 2] [--dask]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psutil

ROOT = Path(__file__).resolve().parents[1]
FLYWHEEL = str(Path(sys.executable).with_name("flywheel"))
SYSTEM = {"en": "You are a helpful assistant.", "zh": "你是一个乐于助人的客服助手。"}


def _pairs_sharegpt(path: Path) -> list[tuple[str, list[str], str, str]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        turns = orjson.loads(line)["conversations"]
        for i in range(len(turns) - 1):
            question, answer = turns[i]["value"], turns[i + 1]["value"]
            if turns[i]["from"] == "human" and turns[i + 1]["from"] == "gpt" and len(question) < 4000 \
                    and len(answer) < 6000:
                context = [turns[i - 1]["value"]] if i and turns[i - 1]["from"] == "gpt" else []
                out.append(("en", context, question, answer))
    return out


def _pairs_turns(path: Path) -> list[tuple[str, list[str], str, str]]:
    dialogs: dict[str, list[dict]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = orjson.loads(line)
        dialogs.setdefault(str(row["dialog_id"]), []).append(row)
    out = []
    for turns in dialogs.values():
        for i in range(len(turns) - 1):
            context = [turns[i - 1]["text"]] if i else []
            out.append(("zh", context, turns[i]["text"], turns[i + 1]["text"]))
    return out


def _pairs_jddc(directory: Path) -> list[tuple[str, list[str], str, str]]:
    enc = (directory / "train.enc").read_text(encoding="utf-8").splitlines()
    dec = (directory / "train.dec").read_text(encoding="utf-8").splitlines()
    return [("zh", [], e.split(",")[-1], d) for e, d in zip(enc, dec, strict=False) if e.strip() and d.strip()]


def conversation_pool(data: Path) -> list[tuple[str, list[str], str, str]]:
    """(language, context turns, user turn, assistant answer) from the public sets."""
    try:
        pool = _pairs_sharegpt(data / "en_conversations/sharegpt_sample/sharegpt_sample.jsonl")
        for name in ("crosswoz/val.turns.jsonl", "crosswoz/test.turns.jsonl", "kdconv/dev.turns.jsonl"):
            pool += _pairs_turns(data / "zh_dialogue" / name)
        pool += _pairs_jddc(data / "zh_dialogue/jddc_extract")
    except FileNotFoundError as exc:
        sys.exit(f"curate_bench: {exc.filename} is missing; rebuild the public sets with "
                 "benchmarks/public_data.py (see benchmarks/DATA.md), or pass --data")
    return pool


def _pii(lang: str, fakes: dict, rng: random.Random) -> str:
    fake = fakes[lang]
    if lang == "zh":
        return rng.choice([f"我叫{fake.name()}。", f"我的手机号是{fake.phone_number()}。", f"邮箱{fake.email()}，"])
    return rng.choice([f"I'm {fake.name()}. ", f"My email is {fake.email()}. ", f"Call me at {fake.phone_number()}. "])


def traffic(pool: list, n: int, seed: int = 5) -> tuple[list[dict], list[dict]]:
    """``n`` interactions (flat shape) and their feedback, deterministic for a seed."""
    from faker import Faker

    rng = random.Random(seed)
    fakes = {"en": Faker("en_US"), "zh": Faker("zh_CN")}
    for fake in fakes.values():
        fake.seed_instance(seed)
    start = datetime(2026, 11, 2, tzinfo=UTC)
    records, feedback, asked = [], [], []
    for i in range(n):
        if asked and rng.random() < 0.12:
            lang, context, question, answer = rng.choice(asked)  # asked again, perhaps with a trivial change
            question = rng.choice([question, question.lower(), question + ("谢谢" if lang == "zh" else " thanks")])
        else:
            lang, context, question, answer = rng.choice(pool)
            asked.append((lang, context, question, answer))
        if rng.random() < 0.1:
            question = _pii(lang, fakes, rng) + question
        ts = start + timedelta(seconds=12 * i)
        messages = [{"role": "system", "content": SYSTEM[lang]}]
        if context:
            messages += [{"role": "user", "content": "…"}, {"role": "assistant", "content": context[0]}]
        messages.append({"role": "user", "content": question})
        iid, when, fate = f"ix-{seed}-{i:07d}", (ts + timedelta(minutes=1)).isoformat(), rng.random()
        response = answer
        if fate < 0.10:  # wrong answer, corrected by the support agent
            response = rng.choice(pool)[3]
            feedback += [{"interaction_id": iid, "timestamp": when, "kind": "thumb", "value": -1, "user": "u"},
                         {"interaction_id": iid, "timestamp": when, "kind": "correction", "text": answer,
                          "user": "agent"}]
        elif fate < 0.16:
            feedback.append({"interaction_id": iid, "timestamp": when, "kind": "thumb", "value": -1, "user": "u"})
        elif fate < 0.19:
            feedback.append({"interaction_id": iid, "timestamp": when, "kind": "regenerate", "user": "u"})
        elif fate < 0.32:
            feedback.append({"interaction_id": iid, "timestamp": when, "kind": rng.choice(["thumb", "rating"]),
                             "value": 1 if rng.random() < 0.5 else 5, "user": "u"})
        records.append({"id": iid, "timestamp": ts.isoformat(), "messages": messages, "response": response,
                        "model": "assistant", "workload_id": "support", "client_id": f"c{rng.randrange(5000)}"})
    return records, feedback


def _peak_memory(proc: subprocess.Popen, peak: dict[str, int]) -> None:
    """Largest RSS and PSS summed over this benchmark's child processes (the curate run, and the Dask workers
    when a cluster is up), every 0.5 s. RSS counts the pages the workers share (the torch and model files)
    once per process; PSS splits them among the processes, so its sum is the memory the run really takes."""
    me = psutil.Process()
    while proc.poll() is None:
        rss = pss = 0
        for child in me.children(recursive=True):
            try:
                info = child.memory_full_info()
            except psutil.Error:
                continue
            rss, pss = rss + info.rss, pss + info.pss
        peak["rss"], peak["pss"] = max(peak["rss"], rss), max(peak["pss"], pss)
        time.sleep(0.5)


def run(cmd: list[str], env: dict[str, str], cwd: str) -> tuple[float, dict[str, int], str]:
    """(seconds, peak RSS and PSS bytes of the child processes, stdout)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = {"rss": 0, "pss": 0}
    watcher = threading.Thread(target=_peak_memory, args=(proc, peak), daemon=True)
    watcher.start()
    out, err = proc.communicate()
    watcher.join()
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    return time.perf_counter() - started, peak, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path("/work/data"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--dask", action="store_true", help="also run the curate flow on a 2-worker Dask cluster")
    parser.add_argument("--keep", type=Path, help="keep the FLYWHEEL_HOME of each run under this folder")
    args = parser.parse_args()
    pool = conversation_pool(args.data)
    print(f"pool: {len(pool)} public turn pairs ({sum(1 for p in pool if p[0] == 'en')} English); "
          f"{os.cpu_count()} CPUs; curate.processes={args.processes}")
    rows = []
    for n in args.sizes:
        records, feedback = traffic(pool, n)
        modes = ["processes"] + (["dask"] if args.dask else [])
        for mode in modes:
            with tempfile.TemporaryDirectory(dir=args.keep) as tmp:
                home = Path(tmp) / "home"
                inbox = home / "inbox"
                inbox.mkdir(parents=True)
                (inbox / "week.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records + feedback))
                env = {**os.environ, "FLYWHEEL_HOME": str(home), "FLYWHEEL_CURATE__PROCESSES": str(args.processes),
                       "PREFECT_HOME": str(Path(tmp) / "prefect"), "HF_HUB_OFFLINE": "1",
                       "TRANSFORMERS_OFFLINE": "1"}
                collect_s, _, _ = run([FLYWHEEL, "collect"], env, tmp)
                if mode == "processes":
                    seconds, peak, out = run([FLYWHEEL, "curate", "--json"], env, tmp)
                else:
                    seconds, peak, out = _run_on_dask(env, tmp)
                result = json.loads(out.strip().splitlines()[-1])
                steps = {s["name"]: s for s in result["steps"]}
                rows.append((n, mode, collect_s, seconds, peak, result, steps))
                print(f"{n:>6} interactions, {mode:9s}: collect {collect_s:6.1f} s; curate {seconds:7.1f} s = "
                      f"{n / seconds:6.1f} interactions/s, peak RSS {peak['rss'] / 2**30:.2f} GiB, PSS "
                      f"{peak['pss'] / 2**30:.2f} GiB; examples in "
                      f"{result['funnel'][2][2]}, new {result['n_new']}; step seconds "
                      + ", ".join(f"{k} {v['seconds']:.0f}" for k, v in steps.items()), flush=True)
    if len(args.sizes) > 1:
        small = [r for r in rows if r[0] == min(args.sizes) and r[1] == "processes"][0]
        large = [r for r in rows if r[0] == max(args.sizes) and r[1] == "processes"][0]
        print(f"growth {small[0]} -> {large[0]} interactions: time x{large[3] / small[3]:.2f}, "
              f"peak PSS x{large[4]['pss'] / small[4]['pss']:.2f}")


def _run_on_dask(env: dict[str, str], cwd: str) -> tuple[float, dict[str, int], str]:
    """The curate flow with ``flows.dask_address`` at a fresh local 2-worker cluster (its workers are children of
    this process, so their memory is sampled with the flow's)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        env = {**env, "FLYWHEEL_FLOWS__DASK_ADDRESS": cluster.scheduler_address}
        code = ("import json; from flows.curate import curate_flow; "
                "print(json.dumps(curate_flow(), default=str))")
        return run([sys.executable, "-c", code], env, cwd)


if __name__ == "__main__":
    main()

"""`flywheel demo`: two simulated weeks of the wheel, end to end, on the demo's tiny model or on SmolLM2.

1. Start the Prefect server (UI on http://127.0.0.1:4200); build the tiny Lumen Notes model (cached) or
   prepare SmolLM2-135M-Instruct from its package (``--model smollm2``, cached).
2. Start the model server. Before anything is trained, probe it with the 120 frozen unseen paraphrases.
3. Week 1: simulated users ask week-1 questions through the real HTTP API; a support agent who knows the
   right answers leaves thumbs and corrections through the feedback API.
4. One full turn of the ``flywheel`` flow: collect -> curate (mine, scrub, dedup, HAP) -> retrain (SFT, DPO,
   eval gate) -> deploy (hot-swap into the running server). The gate reads the demo's facts as an eval-set
   file (``lumen-facts``) and a small general-knowledge eval set, like any user's files.
5. Probe again; week 2: new users ask only the frozen unseen paraphrases (never trained or tuned on).
6. A table: each rate with its n and 95% interval, and which rows are in-distribution.

The demo keeps its state in ``FLYWHEEL_HOME/demo``, which it clears at start (except the models), so a
re-run is clean and reuses the model. The simulator is the same both weeks; only the seed and the
phrasings change.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from demo.domain import fact_eval_rows, unseen_paraphrases, write_fact_eval_set
from demo.model import build_demo_model
from demo.simulate import WeekReport, right_answers, simulate_week
from flows.services import prefect_env, start_model_server, start_prefect_server
from flywheel.settings import Settings, load_settings
from flywheel.warehouse import status
from training.prepared import prepare

WEEK_SEEDS = (101, 202)
KEEP_ON_RESET = {"models", "prefect", "logs"}
MODELS = ("tiny", "smollm2")
DATA = Path(__file__).with_name("data")
RECIPES = {"tiny": None, "smollm2": DATA.parent.parent / "training" / "configs" / "smollm2-135m.yaml"}


@dataclass
class Rate:
    """k of n, shown with a 95% Wilson interval."""

    k: int
    n: int

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else float("nan")

    def interval(self, z: float = 1.96) -> tuple[float, float]:
        if not self.n:
            return float("nan"), float("nan")
        p, n = self.value, self.n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(0.0, centre - half), min(1.0, centre + half)

    def __str__(self) -> str:
        if not self.n:
            return "-"
        low, high = self.interval()
        return f"{self.value:.1%} (n={self.n}, {low:.0%}-{high:.0%})"


@dataclass
class DemoResult:
    model: str
    week1: Any
    week2: Any
    before: dict[str, list[bool]]
    after: dict[str, list[bool]]
    flagged: set[str]
    turn: dict[str, Any]
    status: dict[str, Any]
    ui_url: str | None = None
    seconds: float = 0.0
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)


def demo_settings(settings: Settings, model: str) -> Settings:
    """The demo's own home under FLYWHEEL_HOME, cleared of everything but the models and UI history; the
    flows and the model server read the demo's settings from the environment set here."""
    home = settings.home / "demo"
    if home.exists():
        for child in home.iterdir():
            if child.name not in KEEP_ON_RESET:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    demo = settings.model_copy(update={"home": home})
    demo.ensure_dirs()
    eval_sets = [write_fact_eval_set(home / "eval-sets" / "lumen-facts.jsonl"), DATA / "general-knowledge.jsonl"]
    env = {"FLYWHEEL_HOME": str(home.resolve()),
           "FLYWHEEL_GATE__EVAL_SETS": "[" + ",".join(f'"{p.resolve()}"' for p in eval_sets) + "]",
           "FLYWHEEL_GATE__SMOKE_PROMPT": "How do I reset my password?",
           "FLYWHEEL_GATE__MAX_NEW_TOKENS": "32",
           # One generation thread: on a shared 2-core box two threads waited on each other (SmolLM2, 16
           # prompts x 32 tokens: 10 s with one, 86 s with two, at load ~9).
           "FLYWHEEL_SERVE__TORCH_THREADS": os.environ.get("FLYWHEEL_SERVE__TORCH_THREADS") or "1",
           "FLYWHEEL_SCRUB__ALLOW_LIST": '["Lumen Notes", "Lumen"]'}  # the product's name is no person's
    if RECIPES[model] is not None:
        env["FLYWHEEL_TRAIN__CONFIG"] = str(RECIPES[model])
    os.environ.update(env)
    return load_settings()


def run_demo(settings: Settings, model: str = "tiny", ui: bool = True, keep_running: bool = False,
             conversations: int = 240, console: Any = None) -> DemoResult:
    if model not in MODELS:
        raise ValueError(f"--model {model!r}: use one of {', '.join(MODELS)}")
    console = console or Console()
    started = time.monotonic()
    settings = demo_settings(settings, model)
    services = []
    if ui:
        os.environ.update(prefect_env(settings))  # before prefect is imported by the flows below
        console.print("[bold]1/7[/] starting the Prefect server (UI) ...")
        services.append(start_prefect_server(settings))
    else:
        os.environ["PREFECT_HOME"] = str((settings.home / "prefect").resolve())
        # Prefect's in-process server gets 20 s to start by default; a busy 2-core box needs longer. Offline:
        # no telemetry calls home.
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    try:
        console.print(f"[bold]2/7[/] base model: {model} (built or prepared once, then cached) ...")
        base = _base_model(settings, model)
        os.environ["FLYWHEEL_TRAIN__BASE_MODEL"] = str(base.resolve())
        console.print("[bold]3/7[/] starting the model server ...")
        server = start_model_server(settings)
        services.append(server)
        result = _two_weeks(settings, server.url, conversations, console, model)
        result.ui_url = services[0].url if ui else None
        result.seconds = time.monotonic() - started
        return result
    finally:
        if ui:  # send the runs' last log lines before their server goes away
            from prefect.logging.handlers import APILogWorker

            APILogWorker.drain_all(timeout=10)
        if keep_running:
            console.print("services left running: " + ", ".join(f"{s.name} {s.url}" for s in services))
        else:
            for service in reversed(services):
                service.stop()


def _base_model(settings: Settings, model: str) -> Path:
    if model == "tiny":
        return build_demo_model(settings)
    return prepare(settings, model)


def probe_sets() -> dict[str, list[tuple[Any, str]]]:
    return {"unseen": unseen_paraphrases()}


def _probe(url: str) -> dict[str, list[bool]]:
    return {name: right_answers(url, probes) for name, probes in probe_sets().items()}


def _two_weeks(settings: Settings, url: str, conversations: int, console: Any, model: str) -> DemoResult:
    # The flows import Prefect, which reads its settings (PREFECT_HOME, the server) once, at import: after
    # run_demo has set them.
    from flows.collect import collect_feedback
    from flows.flywheel import flywheel_flow

    unseen: dict[str, list[str]] = {}
    for fact, question in unseen_paraphrases():
        unseen.setdefault(fact.id, []).append(question)
    console.print("[bold]4/7[/] before training: probing the unseen paraphrases ...")
    before = _probe(url)
    console.print(f"[bold]5/7[/] week 1: {conversations} conversations through the API ...")
    week1 = simulate_week(url, WEEK_SEEDS[0], conversations)
    console.print(f"       thumbs-down rate {week1.thumbs_down_rate:.1%}; flywheel turn: collect -> curate -> "
                  "retrain -> gate -> deploy ...")
    turn = flywheel_flow(serve_url=url)
    console.print(f"[bold]6/7[/] after the turn: probing again; week 2: {conversations} conversations asking "
                  "only unseen paraphrases ...")
    after = _probe(url)
    week2 = simulate_week(url, WEEK_SEEDS[1], conversations, questions=lambda fact: unseen[fact.id])
    collect_feedback()  # week 2's traffic is in the warehouse for the next turn
    result = DemoResult(model, week1, week2, before, after, set(week1.wrong_facts), turn, status(settings))
    result.rows = report_rows(result)
    _save(settings.home / "demo-result.json", result)
    console.print("[bold]7/7[/] done")
    return result


def _save(path: Path, result: DemoResult) -> None:
    """What the demo measured, per prompt, beside its table: to recompute or compare runs later."""
    weeks = {name: {"conversations": w.conversations, "rated": w.rated, "thumbs_down": w.thumbs_down,
                    "wrong_facts": sorted(w.wrong_facts), "asked": w.asked}
             for name, w in (("week1", result.week1), ("week2", result.week2))}
    path.write_text(json.dumps({"model": result.model, "weeks": weeks, "before": result.before,
                                "after": result.after, "turn": result.turn, "rows": result.rows,
                                "seconds": result.seconds}, indent=1, default=str))


def load_result(path: Path) -> DemoResult:
    """A saved run (``demo-result.json``) with its table recomputed by this code."""
    data = json.loads(Path(path).read_text())
    weeks = {name: WeekReport(w["conversations"], w["rated"], w["thumbs_down"], w["thumbs_down"],
                              set(w["wrong_facts"]), w["asked"]) for name, w in data["weeks"].items()}
    result = DemoResult(data["model"], weeks["week1"], weeks["week2"], data["before"], data["after"],
                        set(weeks["week1"].wrong_facts), data["turn"],
                        {"production_adapter": data["turn"].get("deployed")}, seconds=data.get("seconds", 0.0))
    result.rows = report_rows(result)
    return result


def report_rows(result: DemoResult) -> list[tuple[str, str, str, str]]:
    """(metric, week 1 / before, week 2 / after, distribution) rows of the demo's table."""
    probes = probe_sets()
    unseen_facts = [fact.id for fact, _ in probes["unseen"]]
    flagged = [i for i, f in enumerate(unseen_facts) if f in result.flagged]
    before, after = result.before, result.after

    def rate(values: list[bool], members: list[int] | None = None) -> Rate:
        picked = values if members is None else [values[i] for i in members]
        return Rate(sum(picked), len(picked))

    known = [i for i, right in enumerate(before["unseen"]) if right]
    to_fix = [i for i in flagged if not before["unseen"][i]]  # the bad cases: flagged facts, answered wrong
    fixed_facts = sum(1 for fact in result.flagged
                      if 2 * sum(after["unseen"][i] for i in to_fix if unseen_facts[i] == fact) >=
                      max(1, sum(1 for i in to_fix if unseen_facts[i] == fact)))
    turn = result.turn
    rows = [
        ("conversations", str(result.week1.conversations), str(result.week2.conversations), ""),
        ("thumbs-down rate (support agent's ratings)", str(Rate(result.week1.thumbs_down, result.week1.rated)),
         str(Rate(result.week2.thumbs_down, result.week2.rated)),
         "week 1: week-1 questions; week 2: unseen paraphrases only"),
        ("unseen paraphrases answered right", str(rate(before["unseen"])), str(rate(after["unseen"])),
         "unseen (never trained or tuned on)"),
        ("fix rate: flagged facts' unseen paraphrases answered wrong before", str(rate(before["unseen"], to_fix)),
         str(rate(after["unseen"], to_fix)), "unseen"),
        ("flagged facts fixed (half or more of those right after)", "",
         f"{fixed_facts} of {len(result.flagged)}", "unseen"),
        ("kept: unseen paraphrases right before, still right", "", str(rate(after["unseen"], known)), "unseen"),
    ]
    reference, candidate = turn.get("reference", {}), turn.get("candidate", {})
    sizes = {"evalset:lumen-facts": len(fact_eval_rows()),
             "evalset:general-knowledge": len((DATA / "general-knowledge.jsonl").read_text().splitlines())}
    for key, label in (("evalset:lumen-facts", "gate: product facts, week-1 questions (production / candidate)"),
                       ("evalset:general-knowledge", "gate: general knowledge (production / candidate)")):
        if key in candidate:
            n = sizes[key]
            rows.append((label, _share(reference[key], n), _share(candidate[key], n),
                         "IN-DISTRIBUTION (trained on)" if "lumen" in key else "unrelated to training"))
    if "evalset:general-knowledge:kept" in candidate:
        rows.append(("gate: general knowledge right before, still right (candidate)", "",
                     _share(candidate["evalset:general-knowledge:kept"], None), "general knowledge"))
    for label, value in turn.get("steps", []):  # each curation step's headline: PII, duplicates, HAP
        rows.append((label, str(value), "", ""))
    rows.append(("new examples", str(turn.get("new_examples", "-")), "", ""))
    rows.append(("dataset version", str(turn.get("dataset_version") or "-"), "", ""))
    rows.append(("adapter in production", "base", str(result.status.get("production_adapter") or "base"), ""))
    rows.append(("gate decision", "", str(turn.get("decision", "-")), ""))
    return rows


def _share(value: float, n: int | None) -> str:
    """A rate the gate measured; with its n, the same 95% interval as the probes'."""
    if value != value:
        return "-"
    return str(Rate(round(value * n), n)) if n else f"{value:.1%}"


def report_table(result: DemoResult) -> Any:
    table = Table(title=f"flywheel demo on {result.model}: week 1 (before) vs week 2 (after); rates with n and "
                        "95% interval")
    for column, justify in (("metric", "left"), ("week 1 / before", "right"), ("week 2 / after", "right"),
                            ("prompts", "left")):
        table.add_column(column, justify=justify)
    for row in result.rows:
        table.add_row(*row)
    return table


def gate_reasons(result: DemoResult) -> list[str]:
    """Why the gate decided as it did, one line per metric it checked."""
    return [f"gate: {reason}" for reason in result.turn.get("reasons", [])]

"""`flywheel demo`: two simulated weeks of the wheel on the embedded default, end to end.

1. Start the Prefect server (UI on http://127.0.0.1:4200) and build the tiny base model (cached).
2. Start the model server; simulated users talk to it through the real HTTP API for week 1, and a
   support agent who knows the right answers leaves thumbs and corrections through the feedback API.
3. Run one full turn of the ``flywheel`` flow: collect -> curate (mine, scrub, dedup, HAP) -> retrain
   (SFT, DPO, eval gate) -> deploy (hot-swap into the running server).
4. Week 2 with new users against the new adapter, then a before/after table.

The demo keeps its state in ``FLYWHEEL_HOME/demo``, which it clears at start (except the built model),
so a re-run is clean and reuses the model. The simulator is the same both weeks; only the seed changes.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from typing import Any

from flywheel.settings import Settings

WEEK_SEEDS = (101, 202)
KEEP_ON_RESET = {"models", "prefect", "logs"}


@dataclass
class DemoResult:
    week1: Any
    week2: Any
    fix_before: float
    fix_after: float
    turn: dict[str, Any]
    status: dict[str, Any]
    ui_url: str | None
    seconds: float


def demo_settings(settings: Settings) -> Settings:
    """The demo's own home under FLYWHEEL_HOME, cleared of everything but the built model and UI history."""
    home = settings.home / "demo"
    if home.exists():
        for child in home.iterdir():
            if child.name not in KEEP_ON_RESET:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    demo = settings.model_copy(update={"home": home})
    demo.ensure_dirs()
    os.environ["FLYWHEEL_HOME"] = str(home.resolve())  # flows and the model server read settings from env
    return demo


def run_demo(settings: Settings, ui: bool = True, keep_running: bool = False, conversations: int = 240,
             console: Any = None) -> DemoResult:
    from rich.console import Console

    from flows.services import prefect_env, start_model_server, start_prefect_server

    console = console or Console()
    started = time.monotonic()
    settings = demo_settings(settings)
    services = []
    if ui:
        os.environ.update(prefect_env(settings))  # before prefect is imported by the flows below
        console.print("[bold]1/6[/] starting the Prefect server (UI) ...")
        services.append(start_prefect_server(settings))
    else:
        os.environ["PREFECT_HOME"] = str((settings.home / "prefect").resolve())
    try:
        from training.base_model import ensure_base_model

        console.print("[bold]2/6[/] building the embedded base model (cached after the first run) ...")
        ensure_base_model(settings)
        console.print("[bold]3/6[/] starting the model server ...")
        server = start_model_server(settings)
        services.append(server)
        result = _two_weeks(settings, server.url, conversations, console)
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


def _two_weeks(settings: Settings, url: str, conversations: int, console: Any) -> DemoResult:
    from flows.collect import collect_feedback
    from flows.flywheel import flywheel_flow
    from demo.simulate import fix_rate, simulate_week
    from flywheel.warehouse import status

    console.print(f"[bold]4/6[/] week 1: {conversations} conversations through the API ...")
    week1 = simulate_week(url, WEEK_SEEDS[0], conversations)
    fix_before = fix_rate(url, week1.wrong_facts)
    console.print(f"       thumbs-down rate {week1.thumbs_down_rate:.1%}; running the flywheel flow ...")
    console.print("[bold]5/6[/] flywheel turn: collect -> curate -> retrain -> gate -> deploy ...")
    turn = flywheel_flow(serve_url=url)
    console.print(f"[bold]6/6[/] week 2: {conversations} conversations with the new adapter ...")
    week2 = simulate_week(url, WEEK_SEEDS[1], conversations)
    fix_after = fix_rate(url, week1.wrong_facts)
    collect_feedback()  # week 2's traffic is in the warehouse for the next turn
    return DemoResult(week1, week2, fix_before, fix_after, turn, status(settings), None, 0.0)


def report_table(result: DemoResult) -> Any:
    from rich.table import Table

    table = Table(title="flywheel demo: week 1 (before) vs week 2 (after)")
    table.add_column("metric")
    table.add_column("week 1", justify="right")
    table.add_column("week 2", justify="right")
    w1, w2, turn = result.week1, result.week2, result.turn
    table.add_row("conversations", str(w1.conversations), str(w2.conversations))
    table.add_row("thumbs-down rate (support agent)", f"{w1.thumbs_down_rate:.1%}", f"{w2.thumbs_down_rate:.1%}")
    table.add_row("bad-case fix rate (held-out paraphrases)", f"{result.fix_before:.1%}", f"{result.fix_after:.1%}")
    for label, key in (("PII entities found and replaced", "pii_replaced"), ("duplicates removed", "duplicates"),
                       ("HAP drops", "hap_dropped"), ("new examples", "new_examples")):
        table.add_row(label, str(turn.get(key, "-")), "")
    table.add_row("dataset version", str(turn.get("dataset_version") or "-"), "")
    table.add_row("adapter in production", "base", str(result.status.get("production_adapter") or "base"))
    table.add_row("gate decision", "", str(turn.get("decision", "-")))
    return table

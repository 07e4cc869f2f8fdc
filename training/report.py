"""The retraining report: markdown with metric tables and PNG loss / reward curves.

The same files are shown by the CLI, attached to the Prefect flow run as artifacts (the markdown,
with the PNGs inlined as data URIs so they render in the UI) and kept in the run directory.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

from training.evaluate import Evaluation

METRIC_ROWS = ("heldout_accuracy", "regression_kept", "regression_accuracy", "preference_accuracy",
               "reward_margin", "heldout_loss", "perplexity", "judge_score", "heldout_prompts", "regression_prompts")


def metric_rows(metrics: dict[str, Any]) -> list[str]:
    """The metrics present, in report order: the fixed ones, then each eval set's."""
    return [m for m in METRIC_ROWS if m in metrics] + sorted(m for m in metrics if m.startswith("evalset:"))


def plot_curves(sft_log: list[dict[str, Any]], dpo_log: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """``sft_loss.png`` and ``dpo_rewards.png`` from the trainers' log histories."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    charts = (
        ("sft_loss.png", "SFT training loss", sft_log, ("loss",)),
        ("dpo_rewards.png", "DPO loss and rewards", dpo_log,
         ("loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies")),
    )
    for name, title, log, keys in charts:
        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
        for key in keys:
            points = [(row["step"], row[key]) for row in log if key in row and "train_runtime" not in row]
            if points:
                ax.plot(*zip(*points, strict=True), label=key, marker="." if len(points) < 30 else None)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / name, metadata={"Software": None})
        plt.close(fig)
        paths.append(out_dir / name)
    return paths


def markdown(title: str, evaluation: Evaluation, facts: dict[str, Any], charts: list[Path],
             inline_images: bool = False) -> str:
    """The report text; charts are linked by file name, or inlined as data URIs for Prefect artifacts."""
    lines = [f"# {title}", "", f"**Decision: {evaluation.gate.decision.upper()}**", ""]
    lines += [f"- {reason}" for reason in evaluation.gate.reasons]
    lines += ["", "| | " + " | ".join(str(k) for k in facts) + " |", "|---" * (len(facts) + 1) + "|",
              "| run | " + " | ".join(str(v) for v in facts.values()) + " |", ""]
    lines += [f"| metric | candidate | {evaluation.reference_name} | change |", "|---|---:|---:|---:|"]
    for metric in metric_rows(evaluation.candidate):
        if metric in evaluation.reference:
            c, r = evaluation.candidate[metric], evaluation.reference[metric]
            lines.append(f"| {metric} | {_fmt(c)} | {_fmt(r)} | {_fmt(c - r, signed=True)} |")
    lines.append("")
    for chart in charts:
        if inline_images:
            data = base64.b64encode(chart.read_bytes()).decode()
            lines.append(f"![{chart.stem}](data:image/png;base64,{data})")
        else:
            lines.append(f"![{chart.stem}]({chart.name})")
    changed = [a for a in evaluation.answers if a["candidate_right"] != a["reference_right"]]
    if changed:
        lines += ["", "## Answers the candidate gets right or wrong where the reference did not", "",
                  f"| set | question | reviewed answer | {evaluation.reference_name} | candidate |", "|---|---|---|---|---|"]
        for a in changed[:30]:
            q = a["messages"][-1]["content"]
            mark = {True: "✔ ", False: "✘ "}
            lines.append(f"| {a['set']} | {_cell(q)} | {_cell(a['reference_answer'])} | "
                         f"{mark[a['reference_right']]}{_cell(a['reference'])} | "
                         f"{mark[a['candidate_right']]}{_cell(a['candidate'])} |")
    return "\n".join(lines) + "\n"


def _fmt(value: float, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:120]

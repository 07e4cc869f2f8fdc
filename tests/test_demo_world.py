"""The demo is one user of the flywheel: nothing outside demo/ imports it, and its week-2 prompts are unseen."""

from __future__ import annotations

import ast
from pathlib import Path

from demo.domain import FACTS, augmented_corpus, fact_eval_rows, normalised_question, unseen_paraphrases

ROOT = Path(__file__).resolve().parents[1]
CORE_PACKAGES = ("flywheel", "collectors", "curation", "training", "serving", "flows")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            names.add(str(node.args[0].value))
    return names


def test_no_module_outside_demo_imports_the_demo_world():
    offenders = []
    for package in CORE_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            demo_imports = sorted(m for m in imported_modules(path) if m == "demo" or m.startswith("demo."))
            if demo_imports:
                offenders.append(f"{path.relative_to(ROOT)}: {', '.join(demo_imports)}")
    assert offenders == [], offenders
    assert imported_modules(ROOT / "demo" / "run.py") & {"demo.simulate", "demo.domain"}  # the scan sees imports


def test_week_two_asks_at_least_100_paraphrases_no_training_or_tuning_text_contains():
    unseen = unseen_paraphrases()
    assert len(unseen) >= 100 and len({q for _, q in unseen}) == len(unseen)
    assert {fact.id for fact, _ in unseen} == {fact.id for fact in FACTS}  # every fact, evenly
    seen = {normalised_question(m["content"]) for conv in augmented_corpus() for m in conv if m["role"] == "user"}
    seen |= {normalised_question(q) for fact in FACTS for q in (*fact.questions, *fact.dev)}
    seen |= {normalised_question(row["prompt"]) for row in fact_eval_rows()}
    assert [q for _, q in unseen if normalised_question(q) in seen] == []


def test_flywheel_demo_comes_from_the_entry_point_the_demo_declares(tmp_path, monkeypatch):
    """`flywheel demo` exists because the installed project declares it (pyproject), not because the core
    imports the demo: a distribution declaring the same entry point adds the command to any app."""
    import sys
    import tomllib

    import typer
    from typer.testing import CliRunner

    from flywheel.cli import register_plugins

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["flywheel.commands"]
    assert declared == {"demo": "demo.cli:register"}
    dist = tmp_path / "demo_plugin-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-plugin\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[flywheel.commands]\ndemo = demo.cli:register\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    app = typer.Typer()
    app.command("noop")(lambda: None)
    register_plugins(app)
    result = CliRunner().invoke(app, ["demo", "--help"])
    assert result.exit_code == 0 and "--model" in result.output and "smollm2" in result.output

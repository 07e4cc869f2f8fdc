"""CLI commands of the annotator review web page."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("review", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def _review() -> None:
        """Not built yet."""
        from flywheel.cli import not_built

        not_built("review", "Serving / Review issues")

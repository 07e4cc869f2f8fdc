"""CLI commands owned by the training package."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("train", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def _train() -> None:
        """Not built yet."""
        from flywheel.cli import not_built

        not_built("train", "Training issue")

    @app.command("eval", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def _eval() -> None:
        """Not built yet."""
        from flywheel.cli import not_built

        not_built("eval", "Training issue")


"""CLI commands owned by the flows package."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("demo", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def _demo() -> None:
        """Not built yet."""
        from flywheel.cli import not_built

        not_built("demo", "Weekly flywheel issue")

    @app.command("flows", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def _flows() -> None:
        """Not built yet."""
        from flywheel.cli import not_built

        not_built("flows", "Weekly flywheel issue")


"""CLI commands owned by the curation package."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from curation import safety_cli

    safety_cli.register(app)

    @app.command("curate", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def _curate() -> None:
        """Not built yet."""
        from flywheel.cli import not_built

        not_built("curate", "Curation pipeline / Data safety issues")

    @app.command("dedup", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def _dedup() -> None:
        """Not built yet."""
        from flywheel.cli import not_built

        not_built("dedup", "Curation pipeline / Data safety issues")

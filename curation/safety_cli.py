"""CLI commands of the data-safety steps (PII scrub, HAP filter, raw-text purge)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("scrub", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def _scrub() -> None:
        """Not built yet."""
        from flywheel.cli import not_built

        not_built("scrub", "Curation pipeline / Data safety issues")

    @app.command("hap", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def _hap() -> None:
        """Not built yet."""
        from flywheel.cli import not_built

        not_built("hap", "Curation pipeline / Data safety issues")

    @app.command("purge", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def _purge() -> None:
        """Not built yet."""
        from flywheel.cli import not_built

        not_built("purge", "Curation pipeline / Data safety issues")

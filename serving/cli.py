"""CLI commands owned by the serving package."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from serving.review import cli as review_cli

    review_cli.register(app)

    @app.command("serve", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def _serve() -> None:
        """Not built yet."""
        from flywheel.cli import not_built

        not_built("serve", "Serving / Review issues")

    @app.command("deploy", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def _deploy() -> None:
        """Not built yet."""
        from flywheel.cli import not_built

        not_built("deploy", "Serving / Review issues")

    @app.command("rollback", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def _rollback() -> None:
        """Not built yet."""
        from flywheel.cli import not_built

        not_built("rollback", "Serving / Review issues")

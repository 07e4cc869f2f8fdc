"""The ``flywheel`` command: one subcommand per stage, each registered by the package that owns it.

Each package's ``cli`` module holds a ``typer.Typer`` of module-level commands that parse and call the
package's library; heavy third-party packages (torch, presidio, prefect) are imported where they are used,
so ``flywheel --help`` and light commands start fast.
"""

from __future__ import annotations

import json

import typer
import yaml

import collectors.cli
import curation.cli
import flows.cli
import serving.cli
import serving.review.cli
import training.cli
from flywheel.console import print_counts
from flywheel.settings import SettingsError, load_settings, masked_dump
from flywheel.warehouse import status as warehouse_status

app = typer.Typer(help="Flywheel: feedback -> curated datasets -> LoRA SFT/DPO -> gated hot-swap deploy.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
config_app = typer.Typer(help="Inspect the effective settings.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings (YAML file + FLYWHEEL_* env + defaults), secrets masked.

    Plain text, never wrapped to the terminal: the output is valid YAML to save as a settings file."""
    typer.echo(yaml.safe_dump(masked_dump(load_settings()), sort_keys=False, width=10**6), nl=False)


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Machine-readable output")) -> None:
    """Row counts in the warehouse, the newest dataset version and the production adapter."""

    counts = warehouse_status(load_settings())
    if as_json:
        typer.echo(json.dumps(counts))
        return
    print_counts("flywheel status", counts.items(), value_header="value")


for package_app in (collectors.cli.app, curation.cli.app, training.cli.app, serving.cli.app, serving.review.cli.app,
                    flows.cli.app):
    app.add_typer(package_app)


def register_plugins(target: typer.Typer) -> None:
    """Commands other installed packages add (entry point group ``flywheel.commands``: a ``register(app)``
    function), e.g. ``flywheel demo``: the core never imports them by name."""
    from importlib.metadata import entry_points

    for entry in {entry.name: entry for entry in entry_points(group="flywheel.commands")}.values():
        entry.load()(target)  # one command per name, however many times a package is on the path


register_plugins(app)


def main() -> None:
    """The ``flywheel`` command: a setting that cannot be used ends it with one line, not a traceback."""
    try:
        app()
    except SettingsError as exc:
        typer.echo(f"flywheel: {exc}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()

"""CLI of the annotator review page: ``flywheel review`` serves it; subcommands manage accounts.

Each command parses its options and calls ``serving.review.app`` or ``serving.review.auth``; the app module
builds the FastAPI app, so the page's command imports it when it runs, not when ``flywheel --help`` does.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from flywheel.settings import load_settings
from serving.http import UnsafeBind, review_page_warnings
from serving.review.auth import AccountError, add_user, list_users

app = typer.Typer(name="review", help="The annotator review web page for curated bad cases, and its accounts.",
                  invoke_without_command=True)


@app.callback()
def review(ctx: typer.Context,
           host: str | None = typer.Option(None, help="Address to listen on (default: settings review.host)"),
           port: int | None = typer.Option(None, help="Port (default: settings review.port, 8001)")) -> None:
    """Serve the review page (sign in with an account made by `flywheel review add-user`)."""
    if ctx.invoked_subcommand is not None:
        return
    from serving.review.app import serve as run_page

    settings = load_settings()
    host = host or settings.review.host
    try:
        warnings = review_page_warnings(settings, host)
    except UnsafeBind as exc:
        typer.echo(f"flywheel review: {exc}", err=True)
        raise typer.Exit(2) from None
    for warning in warnings:
        typer.echo(f"flywheel review: warning: {warning}", err=True)
    run_page(settings, host, port or settings.review.port)


@app.command("add-user")
def add_user_command(
    username: str = typer.Argument(..., help="Lower-case name the annotator signs in with"),
    role: str = typer.Option("annotator", help="annotator (scrubbed text only) or lead (may see raw text)"),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                 envvar="FLYWHEEL_REVIEW_PASSWORD",
                                 help="Asked for when not given; or set FLYWHEEL_REVIEW_PASSWORD"),
) -> None:
    """Create a review account, or set a new role and password for an existing one (which ends its sessions)."""
    try:
        created = add_user(load_settings(), username, role, password)
    except AccountError as exc:
        typer.echo(f"flywheel review add-user: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{'added' if created else 'updated'} {username} ({role})")


@app.command("list-users")
def list_users_command() -> None:
    """The review accounts and their roles."""
    table = Table(title="review accounts")
    for column in ("user", "role", "created"):
        table.add_column(column)
    for username, role, created_at in list_users(load_settings()):
        table.add_row(username, role, created_at.strftime("%Y-%m-%d %H:%M") if created_at else "-")
    Console().print(table)

"""CLI of the annotator review page: ``flywheel review`` serves it; subcommands manage accounts."""

from __future__ import annotations

import typer

from flywheel.settings import ReviewSettings, load_settings

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

review_app = typer.Typer(help="The annotator review web page for curated bad cases, and its accounts.",
                         invoke_without_command=True)


@review_app.callback()
def review(ctx: typer.Context,
           host: str | None = typer.Option(None, help="Address to listen on (default: settings review.host)"),
           port: int | None = typer.Option(None, help="Port (default: settings review.port, 8001)")) -> None:
    """Serve the review page (sign in with an account made by `flywheel review add-user`)."""
    if ctx.invoked_subcommand is not None:
        return
    from serving import http
    from serving.review.app import create_app

    settings = load_settings()
    host = host or settings.review.host
    if host not in LOOPBACK_HOSTS and settings.review.session_secret == ReviewSettings().session_secret:
        typer.echo(f"flywheel review: refusing to listen on {host} with the demo session secret; "
                   "set FLYWHEEL_REVIEW__SESSION_SECRET to a long random value.", err=True)
        raise typer.Exit(2)
    if host not in LOOPBACK_HOSTS and not settings.review.secure_cookie:
        typer.echo(f"flywheel review: warning: listening on {host} with a session cookie that plain HTTP carries; "
                   "serve it behind HTTPS and set FLYWHEEL_REVIEW__SECURE_COOKIE=true.", err=True)
    http.run(create_app(settings), host, port or settings.review.port)


@review_app.command("add-user")
def add_user_command(
    username: str = typer.Argument(..., help="Lower-case name the annotator signs in with"),
    role: str = typer.Option("annotator", help="annotator (scrubbed text only) or lead (may see raw text)"),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                 envvar="FLYWHEEL_REVIEW_PASSWORD",
                                 help="Asked for when not given; or set FLYWHEEL_REVIEW_PASSWORD"),
) -> None:
    """Create a review account, or set a new role and password for an existing one (which ends its sessions)."""
    from serving.review.auth import AccountError, add_user

    try:
        created = add_user(load_settings(), username, role, password)
    except AccountError as exc:
        typer.echo(f"flywheel review add-user: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{'added' if created else 'updated'} {username} ({role})")


@review_app.command("list-users")
def list_users_command() -> None:
    """The review accounts and their roles."""
    from rich.console import Console
    from rich.table import Table

    from serving.review.auth import list_users

    table = Table(title="review accounts")
    for column in ("user", "role", "created"):
        table.add_column(column)
    for username, role, created_at in list_users(load_settings()):
        table.add_row(username, role, created_at.strftime("%Y-%m-%d %H:%M") if created_at else "-")
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(review_app, name="review")

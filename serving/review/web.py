"""What the review page's routers share: the warehouse and session dependencies, CSRF, rendering, links.

Every link and redirect the page makes is a path on this site (``/items/x?status=all``), never an
absolute URL built from the request's ``Host`` header, so a forged Host cannot send a reviewer elsewhere.
Client addresses (for the sign-in limits) come from the TCP peer, or from ``X-Forwarded-For`` only when
that peer is one of ``review.trusted_proxies``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import duckdb
import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import IPvAnyNetwork

from curation import review_queue
from flywheel.warehouse import connect
from serving.review.auth import Reviewer, csrf_matches, new_csrf_token, session_reviewer
from serving.review.scrubbed import ScrubberFactory, make_scrubber

HERE = Path(__file__).parent


class NotSignedIn(Exception):
    """Raised by the session check; answered with the sign-in page (GET) or 401 (anything else)."""


class BadCsrfToken(Exception):
    """Raised when a form post lacks the session's CSRF token."""


def templates() -> Jinja2Templates:
    """Autoescaped templates whose ``url_for`` gives site paths and whose ``when`` filter shows any stored time."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined)

    @jinja2.pass_context
    def url_for(context: dict[str, Any], name: str, /, **params: Any) -> str:
        return path_for(context["request"], name, **params)

    env.globals["url_for"] = url_for
    env.filters["when"] = when
    return Jinja2Templates(env=env)


def when(value: Any, fmt: str) -> str:
    """A stored time as text: formatted when it is a datetime, shown as it is otherwise (a time outside what
    Python can hold comes back from DuckDB as text; the page shows it rather than failing)."""
    if value is None:
        return ""
    return value.strftime(fmt) if isinstance(value, datetime) else str(value)


def path_for(request: Request, name: str, **params: Any) -> str:
    return request.scope.get("root_path", "") + str(request.app.url_path_for(name, **params))


def with_query(path: str, query: dict[str, str]) -> str:
    return f"{path}?{urlencode(query)}" if query else path


def item_url(request: Request, interaction_id: str, filt: review_queue.QueueFilter, **extra: str) -> str:
    return with_query(path_for(request, "item", interaction_id=interaction_id), {**filt.params(), **extra})


def queue_url(request: Request, filt: review_queue.QueueFilter) -> str:
    return with_query(path_for(request, "queue"), filt.params())


def local_path(target: str | None) -> str | None:
    """Only same-site paths may be a redirect target after sign-in (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def client_address(request: Request, trusted: list[IPvAnyNetwork]) -> str:
    """The address to count sign-in attempts against: the peer, unless the peer is a trusted proxy; then the
    right-most address in X-Forwarded-For that is not itself a trusted proxy."""
    peer = request.client.host if request.client else "unknown"
    if not _is_trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return peer


def _is_trusted(address: str, trusted: list[IPvAnyNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def warehouse(request: Request) -> Iterator[duckdb.DuckDBPyConnection]:
    """One short warehouse connection for the request, serialised by the app's lock (one writer per process)."""
    with request.app.state.lock, connect(request.app.state.settings) as con:
        yield con


Warehouse = Annotated[duckdb.DuckDBPyConnection, Depends(warehouse)]


def signed_in(request: Request, con: Warehouse) -> Reviewer:
    """The reviewer of this session, with the role the account has now; every route but sign-in needs it."""
    reviewer = session_reviewer(con, request.session.get("sid"))
    if reviewer is None:
        raise NotSignedIn()
    return reviewer


SignedIn = Annotated[Reviewer, Depends(signed_in)]


async def csrf_checked(request: Request) -> None:
    """Every form post must echo the token stored in its session."""
    form = await request.form()
    if not csrf_matches(request.session.get("csrf"), form.get("csrf_token")):
        raise BadCsrfToken()


def scrubber(request: Request) -> ScrubberFactory:
    """Builds the scrubber (spaCy: seconds) on first use and keeps it on the app."""
    state = request.app.state

    def factory():
        if state.scrubber is None:
            state.scrubber = make_scrubber(state.settings)
        return state.scrubber

    return factory


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("user", None)
    if "csrf" not in request.session:
        request.session["csrf"] = new_csrf_token()
    context.update(csrf_token=request.session["csrf"], flash=request.session.pop("flash", None))
    return request.app.state.templates.TemplateResponse(request, name, context, status_code=status_code)

"""The annotator review page: server-rendered HTML (FastAPI + Jinja2, autoescaped) over the warehouse.

Security model: every route except the sign-in page needs a session (a signed, HttpOnly, SameSite
cookie, Secure when ``review.secure_cookie`` is set); failed sign-ins are throttled per account and per
client address; every form post carries the session's CSRF token; annotators see conversations only as
scrubbed, and a lead may open the raw text while the raw record still exists. Pages are rendered with
Jinja2 autoescaping and served with a Content-Security-Policy that allows no inline script.

Each request does its unit of work in one short warehouse connection, serialised by a lock held on the
app (DuckDB takes one writer per process; the lock also guards the scrubber, built on first use).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from itertools import groupby
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import duckdb
import jinja2
from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from flywheel.settings import Settings
from flywheel.warehouse import connect
from serving.review import store
from serving.review.auth import Reviewer, SignInThrottle, authenticate, csrf_matches, new_csrf_token
from serving.review.scrubbed import ScrubbedView, make_scrubber, scrubbed_views

HERE = Path(__file__).parent
SESSION_COOKIE = "flywheel_review"
SESSION_MAX_AGE = timedelta(hours=8)
# Failed sign-ins allowed per 15 minutes: per account (guessing one password), per client address (spraying).
SIGN_IN_LIMITS = {"account": 5, "address": 20}
PAGE_SIZE = 100
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class NotSignedIn(Exception):
    """Raised by the session check; answered with the sign-in page (GET) or 401 (anything else)."""


class BadCsrfToken(Exception):
    """Raised when a form post lacks the session's CSRF token."""


def signed_in(request: Request) -> Reviewer:
    """The reviewer of this session; every route but the sign-in page depends on it."""
    user, role = request.session.get("user"), request.session.get("role")
    if not user or not role:
        raise NotSignedIn()
    return Reviewer(user, role)


async def csrf_checked(request: Request) -> None:
    """Every form post must echo the token stored in its session."""
    form = await request.form()
    if not csrf_matches(request.session.get("csrf"), form.get("csrf_token")):
        raise BadCsrfToken()


def _csrf_token(request: Request) -> str:
    if "csrf" not in request.session:
        request.session["csrf"] = new_csrf_token()
    return request.session["csrf"]


def _local_path(target: str | None) -> str | None:
    """Only same-site paths may be a redirect target after sign-in (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def create_app(settings: Settings) -> FastAPI:
    """The review app for one warehouse; ``flywheel review`` serves it, tests start it with uvicorn."""
    app = FastAPI(title="Flywheel review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.lock = threading.Lock()
    app.state.scrubber = None
    app.state.sign_in_throttle = SignInThrottle(SIGN_IN_LIMITS)
    templates = Jinja2Templates(env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined))

    @contextmanager
    def warehouse() -> Iterator[duckdb.DuckDBPyConnection]:
        with app.state.lock, connect(settings) as con:
            yield con

    def scrubber():
        if app.state.scrubber is None:
            app.state.scrubber = make_scrubber(settings)
        return app.state.scrubber

    def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("user", None)
        context.update(csrf_token=_csrf_token(request), flash=request.session.pop("flash", None))
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    def item_url(request: Request, interaction_id: str, filt: store.QueueFilter, **extra: str) -> str:
        url = str(request.url_for("item", interaction_id=interaction_id))
        query = {**filt.params(), **extra}
        return f"{url}?{urlencode(query)}" if query else url

    def queue_url(request: Request, filt: store.QueueFilter) -> str:
        query = filt.params()
        return str(request.url_for("queue")) + (f"?{urlencode(query)}" if query else "")

    @app.exception_handler(NotSignedIn)
    async def _not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        if request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            login = str(request.url_for("login_page")) + "?" + urlencode({"next": target})
            return RedirectResponse(login, status_code=303)
        return PlainTextResponse("Sign in first.", status_code=401)

    @app.exception_handler(BadCsrfToken)
    async def _bad_csrf(request: Request, exc: BadCsrfToken) -> Response:
        return PlainTextResponse("This form expired or did not come from this site: reload the page and try again.",
                                 status_code=403)

    @app.exception_handler(store.FilterError)
    async def _bad_filter(request: Request, exc: store.FilterError) -> Response:
        return PlainTextResponse(f"Bad filter: {exc}", status_code=400)

    @app.middleware("http")
    async def _security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.get("/login", response_class=HTMLResponse, name="login_page")
    def login_page(request: Request, next: str | None = None) -> HTMLResponse:
        return render(request, "login.html", next=_local_path(next) or "", error=None)

    @app.post("/login", dependencies=[Depends(csrf_checked)], name="login")
    def login(request: Request, username: str = Form(""), password: str = Form(""),
              next: str = Form("")) -> Response:
        username = username.strip()
        target = _local_path(next) or str(request.url_for("queue"))
        throttle: SignInThrottle = app.state.sign_in_throttle
        attempt = {"account": username, "address": request.client.host if request.client else "unknown"}
        wait_s = throttle.retry_after(attempt)
        if wait_s:
            response = render(request, "login.html", status_code=429, next=_local_path(next) or "",
                              error=f"Too many failed sign-ins: try again in {math.ceil(wait_s / 60)} min.")
            response.headers["Retry-After"] = str(wait_s)
            return response
        with warehouse() as con:
            reviewer = authenticate(con, username, password) if username and password else None
        if reviewer is None:
            throttle.failed(attempt)
            return render(request, "login.html", status_code=401, next=_local_path(next) or "",
                          error="Wrong user name or password.")
        throttle.succeeded("account", username)
        request.session.clear()  # a fresh session (and CSRF token) at every sign-in
        request.session.update(user=reviewer.username, role=reviewer.role, csrf=new_csrf_token())
        return RedirectResponse(target, status_code=303)

    @app.post("/logout", dependencies=[Depends(signed_in), Depends(csrf_checked)], name="logout")
    def logout(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse(str(request.url_for("login_page")), status_code=303)

    @app.get("/", response_class=HTMLResponse, name="queue")
    def queue(request: Request, page: int = 0, user: Reviewer = Depends(signed_in)) -> HTMLResponse:
        filt = store.QueueFilter.from_params(request.query_params)
        page = max(page, 0)
        with warehouse() as con:
            rows, total = store.queue_page(con, filt, PAGE_SIZE, page * PAGE_SIZE)
            counts = store.status_counts(con, filt)
            choices = store.filter_choices(con)
            views = scrubbed_views(con, settings, scrubber, [r["interaction_id"] for r in rows])
        for row in rows:
            row["preview"] = views[row["interaction_id"]].preview
            row["url"] = item_url(request, row["interaction_id"], filt)
        clusters = [(cluster_id, list(items)) for cluster_id, items in groupby(rows, key=lambda r: r["cluster_id"])]
        page_url = queue_url(request, filt)
        joiner = "&" if "?" in page_url else "?"
        return render(request, "queue.html", user=user, filt=filt, clusters=clusters, total=total, counts=counts,
                      choices=choices, statuses=store.STATUSES,
                      cluster_url=lambda c: queue_url(request, store.QueueFilter(status=filt.status, cluster=c)),
                      prev_page=f"{page_url}{joiner}page={page - 1}" if page > 0 else None,
                      next_page=f"{page_url}{joiner}page={page + 1}" if (page + 1) * PAGE_SIZE < total else None,
                      first_shown=page * PAGE_SIZE + 1 if rows else 0, last_shown=page * PAGE_SIZE + len(rows))

    def item_page(request: Request, con: duckdb.DuckDBPyConnection, user: Reviewer, interaction_id: str,
                  filt: store.QueueFilter, show_raw: bool, status_code: int = 200, **context: Any) -> HTMLResponse:
        item = store.queue_item(con, interaction_id)
        if item is None:
            return render(request, "message.html", status_code=404, user=user, title="Not in the queue",
                          message=f"There is no review item {interaction_id!r}.")
        members = store.cluster_members(con, item["cluster_id"])
        views = scrubbed_views(con, settings, scrubber, sorted({interaction_id, *(m["interaction_id"] for m in members)}))
        raw = None
        if show_raw:
            role = con.execute("SELECT role FROM review_users WHERE username = ?", [user.username]).fetchone()
            if not role or role[0] != "lead":
                return render(request, "message.html", status_code=403, user=user, title="Lead only",
                              message="Raw text is shown to the lead role only.")
            if item["raw_purged_at"] is None and item["interaction_exists"]:
                raw = store.raw_sources(con, [interaction_id])[interaction_id]
        prev_id, next_id = store.neighbours(con, filt, interaction_id)
        for m in members:
            m["preview"] = views[m["interaction_id"]].preview
            m["url"] = item_url(request, m["interaction_id"], filt)
        view: ScrubbedView = views[interaction_id]
        open_in_cluster = sum(m["status"] == "new" for m in members)
        context.setdefault("answer", view.suggested_answer or "")
        context.setdefault("reason", "")
        return render(
            request, "item.html", status_code=status_code, user=user, item=item, view=view, raw=raw,
            show_raw=show_raw, members=members, open_in_cluster=open_in_cluster, filt=filt,
            suggestion_scrubbed=view.suggested_answer != item["suggested_answer"],
            queue_url=queue_url(request, filt),
            prev_url=item_url(request, prev_id, filt) if prev_id else None,
            next_url=item_url(request, next_id, filt) if next_id else None,
            raw_url=item_url(request, interaction_id, filt, raw="1"),
            scrubbed_url=item_url(request, interaction_id, filt),
            decision_url=str(request.url_for("decide", interaction_id=interaction_id))
            + (f"?{urlencode(filt.params())}" if filt.params() else ""),
            **context)

    @app.get("/items/{interaction_id}", response_class=HTMLResponse, name="item")
    def item(request: Request, interaction_id: str, raw: str | None = None,
             user: Reviewer = Depends(signed_in)) -> HTMLResponse:
        filt = store.QueueFilter.from_params(request.query_params)
        with warehouse() as con:
            return item_page(request, con, user, interaction_id, filt, show_raw=raw == "1")

    @app.post("/items/{interaction_id}/decision", dependencies=[Depends(signed_in), Depends(csrf_checked)], name="decide")
    def decide(request: Request, interaction_id: str, action: str = Form(""), revision: int = Form(...),
               answer: str = Form(""), reason: str = Form(""), scope: str = Form("item"),
               user: Reviewer = Depends(signed_in)) -> Response:
        filt = store.QueueFilter.from_params(request.query_params)
        whole_cluster = scope == "cluster"
        status = {"accept": "accepted", "edit": "edited", "reject": "rejected"}.get(action, action)
        with warehouse() as con:
            if status == "edited":
                shown = scrubbed_views(con, settings, scrubber, [interaction_id]).get(interaction_id)
                if shown and shown.suggested_answer and answer.strip() == shown.suggested_answer.strip():
                    status = "accepted"  # "edited" to the suggestion unchanged is an acceptance
            decision = store.Decision(interaction_id, status, user.username, revision, answer, reason)
            try:
                outcome = store.decide(con, decision, whole_cluster=whole_cluster)
            except store.DecisionError as exc:
                return item_page(request, con, user, interaction_id, filt, show_raw=False, status_code=422,
                                 error=str(exc), answer=answer, reason=reason)
            if outcome.conflict:
                return item_page(request, con, user, interaction_id, filt, show_raw=False, status_code=409,
                                 conflict=outcome.conflict, answer=answer, reason=reason)
            _, next_id = store.neighbours(con, filt, interaction_id)
        done = len(outcome.saved)
        message = f"{status.capitalize()} {done} item{'s' if done != 1 else ''}"
        if whole_cluster:
            message += " in this cluster"
        if outcome.left_alone:
            message += f"; {outcome.left_alone} already decided (or without a suggestion) left as they were"
        request.session["flash"] = message + "."
        target = item_url(request, next_id, filt) if next_id else queue_url(request, filt)
        return RedirectResponse(target, status_code=303)

    @app.get("/audit", response_class=HTMLResponse, name="audit")
    def audit(request: Request, user: Reviewer = Depends(signed_in)) -> HTMLResponse:
        with warehouse() as con:
            summary = store.audit_summary(con)
        return render(request, "audit.html", user=user, summary=summary)

    @app.get("/audit/{reviewer}", response_class=HTMLResponse, name="audit_reviewer")
    def audit_reviewer(request: Request, reviewer: str, user: Reviewer = Depends(signed_in)) -> HTMLResponse:
        with warehouse() as con:
            decisions = store.audit_decisions(con, reviewer)
        for d in decisions:
            d["url"] = item_url(request, d["interaction_id"], store.QueueFilter(status="all"))
        return render(request, "audit_reviewer.html", user=user, reviewer=reviewer, decisions=decisions)

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(SessionMiddleware, secret_key=settings.review.session_secret.get_secret_value(),
                       session_cookie=SESSION_COOKIE, max_age=int(SESSION_MAX_AGE.total_seconds()),
                       same_site="strict", https_only=settings.review.secure_cookie)
    return app

"""The annotator review page: server-rendered HTML (FastAPI + Jinja2, autoescaped) over the warehouse.

Security model: every route except the sign-in page needs a live server-side session (the signed,
HttpOnly, SameSite cookie carries only its token; Secure when ``review.secure_cookie`` is set); sign-in
attempts are limited per account and per client address, counted before any password hashing; every
form post carries the session's CSRF token; annotators see conversations only as scrubbed, and a lead
may open the raw text while the raw record still exists. Pages are rendered with Jinja2 autoescaping,
link only to paths on this site (never to the request's Host), and are served with a
Content-Security-Policy that allows no inline script.

One router per resource (``serving.review.routes``: sign-in, queue, items, audit); what they share, the
warehouse and session dependencies among it, is in ``serving.review.web``. Each request does its unit of
work in one short warehouse connection, serialised by a lock held on the app (DuckDB takes one writer
per process; the lock also guards the scrubber, built on first use).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from curation import review_queue
from flywheel.settings import Settings
from serving import http
from serving.review.auth import SESSION_LIFETIME, SignInThrottle
from serving.review.routes import audit, items, queue, signin
from serving.review.web import BadCsrfToken, NotSignedIn, path_for, templates

HERE = Path(__file__).parent
SESSION_COOKIE = "flywheel_review"
# Sign-in attempts allowed per 15 minutes: per account (guessing one password), per client address (spraying).
SIGN_IN_LIMITS = {"account": 5, "address": 20}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def serve(settings: Settings, host: str, port: int) -> None:
    """``flywheel review``: the page in the foreground until Ctrl-C."""
    http.run(create_app(settings), host, port)


def create_app(settings: Settings) -> FastAPI:
    """The review app for one warehouse; ``flywheel review`` serves it, tests start it with uvicorn."""
    app = FastAPI(title="Flywheel review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.lock = threading.Lock()
    app.state.scrubber = None
    app.state.sign_in_throttle = SignInThrottle(SIGN_IN_LIMITS)
    app.state.templates = templates()

    app.add_exception_handler(NotSignedIn, _not_signed_in)
    app.add_exception_handler(BadCsrfToken, _bad_csrf)
    app.add_exception_handler(review_queue.FilterError, _bad_filter)
    app.middleware("http")(_security_headers)
    for router in (signin.router, queue.router, items.router, audit.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(SessionMiddleware, secret_key=settings.review.session_secret.get_secret_value(),
                       session_cookie=SESSION_COOKIE, max_age=int(SESSION_LIFETIME.total_seconds()),
                       same_site="strict", https_only=settings.review.secure_cookie)
    return app


async def _not_signed_in(request: Request, exc: NotSignedIn) -> Response:
    if request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{path_for(request, 'login_page')}?{urlencode({'next': target})}", status_code=303)
    return PlainTextResponse("Sign in first.", status_code=401)


async def _bad_csrf(request: Request, exc: BadCsrfToken) -> Response:
    return PlainTextResponse("This form expired or did not come from this site: reload the page and try again.",
                             status_code=403)


async def _bad_filter(request: Request, exc: review_queue.FilterError) -> Response:
    return PlainTextResponse(f"Bad filter: {exc}", status_code=400)


async def _security_headers(request: Request, call_next: Any) -> Response:
    response = await call_next(request)
    response.headers.update(SECURITY_HEADERS)
    return response

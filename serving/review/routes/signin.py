"""Sign in and out. Attempts are counted per account and per client address before any hashing; the
password is checked outside the warehouse lock; a successful sign-in starts a server-side session."""

from __future__ import annotations

import math

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from flywheel.warehouse import connect
from serving.review.auth import (
    HashingBusy,
    SignInThrottle,
    end_session,
    new_csrf_token,
    password_record,
    start_session,
    verify_password,
)
from serving.review.web import (
    SignedIn,
    Warehouse,
    client_address,
    csrf_checked,
    local_path,
    path_for,
    render,
    signed_in,
)

router = APIRouter()


@router.get("/login", response_class=HTMLResponse, name="login_page")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", next=local_path(next) or "", error=None)


@router.post("/login", dependencies=[Depends(csrf_checked)], name="login")
def login(request: Request, username: str = Form(""), password: str = Form(""), next: str = Form("")) -> Response:
    state = request.app.state
    username = username.strip()
    target = local_path(next) or path_for(request, "queue")
    throttle: SignInThrottle = state.sign_in_throttle
    attempt = {"account": username, "address": client_address(request, state.settings.review.trusted_proxies)}

    def refused(status: int, error: str, retry_after: int | None = None) -> Response:
        response = render(request, "login.html", status_code=status, next=local_path(next) or "", error=error)
        if retry_after:
            response.headers["Retry-After"] = str(retry_after)
        return response

    wait_s = throttle.attempt(attempt)
    if wait_s:
        return refused(429, f"Too many failed sign-ins: try again in {math.ceil(wait_s / 60)} min.", wait_s)
    if not username or not password:
        return refused(401, "Wrong user name or password.")
    with state.lock, connect(state.settings) as con:
        record = password_record(con, username)
    try:
        reviewer, rehashed = verify_password(record, username, password)  # no lock held while hashing
    except HashingBusy:
        return refused(429, "Too many sign-ins at once: try again in a minute.", 60)
    if reviewer is None:
        return refused(401, "Wrong user name or password.")
    throttle.succeeded(attempt)
    with state.lock, connect(state.settings) as con:
        token = start_session(con, reviewer, rehashed)
    request.session.clear()  # a fresh session (and CSRF token) at every sign-in
    request.session.update(sid=token, csrf=new_csrf_token())
    return RedirectResponse(target, status_code=303)


@router.post("/logout", dependencies=[Depends(signed_in), Depends(csrf_checked)], name="logout")
def logout(request: Request, con: Warehouse, user: SignedIn) -> Response:
    end_session(con, request.session.get("sid"))  # every copy of the cookie stops working, not just this one
    request.session.clear()
    return RedirectResponse(path_for(request, "login_page"), status_code=303)

"""How both servers (the model server and the review page) run under uvicorn, in one place, and what is
unsafe about exposing each beyond loopback.

uvicorn trusts ``X-Forwarded-For`` / ``X-Forwarded-Proto`` from 127.0.0.1 by default, which let a local
client change its apparent address at will (and so escape per-address limits). Here proxy headers are
never read by uvicorn: the review page reads ``X-Forwarded-For`` itself, and only from the proxies named
in ``review.trusted_proxies``.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flywheel.settings import ReviewSettings, Settings

UVICORN_OPTIONS = {"proxy_headers": False}


class UnsafeBind(RuntimeError):
    """A server must not listen on this address as configured; the message says what to set."""


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def model_server_warnings(settings: Settings, host: str) -> list[str]:
    """What is unsafe about exposing the model server on ``host``; empty on loopback."""
    if is_loopback(host):
        return []
    serve = settings.serve
    problems = []
    if serve.api_key is None:
        problems.append("no inference key (serve.api_key): anyone who can reach it can run completions")
    if serve.feedback_key is None:
        problems.append("no feedback key (serve.feedback_key): anyone can write feedback into the training data")
    if serve.admin_key.get_secret_value() == "flywheel-admin":
        problems.append("the admin key is the public default: anyone can swap the production adapter")
    return [f"binding to {host}: {p}" for p in problems]


def review_page_warnings(settings: Settings, host: str) -> list[str]:
    """What is unsafe about serving the review page on ``host`` (empty on loopback); UnsafeBind when it must
    not run there at all: beyond loopback with the demo session secret, anyone could forge a session."""
    if is_loopback(host):
        return []
    if settings.review.session_secret == ReviewSettings().session_secret:
        raise UnsafeBind(f"refusing to listen on {host} with the demo session secret; "
                         "set FLYWHEEL_REVIEW__SESSION_SECRET to a long random value.")
    if not settings.review.secure_cookie:
        return [f"listening on {host} with a session cookie that plain HTTP carries; "
                "serve it behind HTTPS and set FLYWHEEL_REVIEW__SECURE_COOKIE=true."]
    return []


def run(app: Any, host: str, port: int) -> None:
    """Serve ``app`` in the foreground (the CLIs) until Ctrl-C / SIGTERM."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info", **UVICORN_OPTIONS)


@contextmanager
def background(app: Any, host: str = "127.0.0.1", port: int = 0, name: str = "server",
               start_timeout_s: float = 600) -> Iterator[str]:
    """Serve ``app`` from a thread (tests, benchmarks, the demo); yields its base URL.

    The socket is bound before uvicorn starts, so ``port=0`` picks a free port without a race.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", **UVICORN_OPTIONS))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"flywheel-{name}", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"the {name} did not start; its log above says why")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()

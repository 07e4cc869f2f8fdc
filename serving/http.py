"""How both servers (the model server and the review page) run under uvicorn, in one place.

uvicorn trusts ``X-Forwarded-For`` / ``X-Forwarded-Proto`` from 127.0.0.1 by default, which let a local
client change its apparent address at will (and so escape per-address limits). Here proxy headers are
never read by uvicorn: the review page reads ``X-Forwarded-For`` itself, and only from the proxies named
in ``review.trusted_proxies``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

UVICORN_OPTIONS = {"proxy_headers": False}


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

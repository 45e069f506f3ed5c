"""The app served by a real uvicorn on a free loopback port, for tests and benchmarks.

    from tests.local_server import free_port, serve_app
"""

from __future__ import annotations

import socket
import threading
import time


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """A running app: `url` (http), `ws` (ws://), `app` (None for a server in another process);
    `hub` and `rooms` are its try-on and room hubs."""

    def __init__(self, app, url: str):
        self.app, self.url = app, url
        self.ws = "ws" + url[len("http"):]

    @property
    def hub(self):
        return self.app.state.tryon

    @property
    def rooms(self):
        return self.app.state.rooms


def serve_app(settings, body_model=None):
    """Starts `create_app(settings)` in a uvicorn thread (with `body_model` as the try-on sessions'
    model when given: no second load); returns (Served, stop())."""
    import uvicorn

    from streaming.api_app import create_app

    app = create_app(settings)
    if body_model is not None:
        app.state.tryon.registry.model = body_model
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)

    def stop():
        server.should_exit = True
        thread.join(20)

    return Served(app, f"http://127.0.0.1:{port}"), stop

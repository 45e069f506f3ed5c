"""The app served by a real uvicorn on a free loopback port, for tests and benchmarks.

In this process (a uvicorn thread; the app and its hubs at hand):

    from tests.local_server import free_port, serve_app

    served, stop = serve_app(settings)

In another process (`python -m fitroom.cli serve`, as deployed; its own CPU, memory and event loop):

    from tests.local_server import free_port, server_data_dir, start_server_process, stop_process, wait_http

    port, log = free_port(), tmp / "server.log"
    env = {**os.environ, "FITROOM_DATA_DIR": str(server_data_dir(tmp))}
    proc = start_server_process(port, env, log)
    try:
        wait_http(f"http://127.0.0.1:{port}", proc, log)
        ...
    finally:
        stop_process(proc)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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


# ------------------------------------------------------------------------------------------------
# a server in a subprocess


def server_data_dir(tmp: Path) -> Path:
    """`tmp`/data, a data directory for a server process that drapes without converting Anny again:
    the converted body model of the environment's data directory (FITROOM_DATA_DIR; converted there
    first if missing) linked read-only, and a copy of its cached reference bodies when it has them.
    The catalogue, uploads and blobs start empty."""
    from fitroom.settings import get_settings

    real = get_settings().data_dir.resolve()
    data = Path(tmp) / "data"
    data.mkdir()
    model = real / "body_model.npz"
    if not model.exists():
        from avatar.body_model_data import convert

        convert(model)
    (data / "body_model.npz").symlink_to(model)
    if (real / "reference_bodies").is_dir():
        shutil.copytree(real / "reference_bodies", data / "reference_bodies")
    return data


def start_server_process(port: int, env: dict | None, log_path: Path | None, argv: list[str] | None = None,
                         profile: Path | None = None) -> subprocess.Popen:
    """Starts `python -m fitroom.cli serve --port PORT` on 127.0.0.1 (the app as deployed: settings
    from the environment, no websocket permessage-deflate, uvicorn's info log) and returns at once;
    `wait_http` waits for it to answer.

    `env`: the process's whole environment (None: this one's); it reads its settings from it
    (FITROOM_DATA_DIR, FITROOM_DATABASE_URL, FITROOM_REDIS_URL, ...). The repository root is put first
    on its PYTHONPATH. `log_path`: stdout and stderr appended to this file (None: this process's own).
    `argv`: what follows `python` instead of the default (a script and its arguments, say; it names
    the port itself). `profile`: run under cProfile, its stats written to this file when the process
    exits: stop it with `stop_process(proc, interrupt=True)`, as SIGTERM ends it before cProfile writes."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable] + (["-m", "cProfile", "-o", str(profile)] if profile is not None else [])
    cmd += argv if argv is not None else ["-m", "fitroom.cli", "serve", "--port", str(port)]
    if log_path is None:
        return subprocess.Popen(cmd, cwd=ROOT, env=env)
    with open(log_path, "ab") as log:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def _log_tail(log_path: Path | None, chars: int = 3000) -> str:
    if log_path is None:
        return "(its output is above)"
    try:
        return Path(log_path).read_text(errors="replace")[-chars:]
    except OSError as e:
        return f"(no log: {e})"


def wait_http(url: str, proc: subprocess.Popen, log_path: Path | None, path: str = "/api/v1/products",
              timeout: float = 60.0) -> None:
    """Returns once the server process `proc` answers a GET of `url` + `path` with any HTTP status
    (uvicorn listens only after the app's startup). Raises RuntimeError with the tail of `log_path`
    when the process exits first or `timeout` seconds pass; it does not stop the process."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}):\n{_log_tail(log_path)}")
        try:
            httpx.get(url + path, timeout=2)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer {url}{path} in {timeout:g} s:\n{_log_tail(log_path)}")
            time.sleep(0.05)


def stop_process(*procs: subprocess.Popen | None, interrupt: bool = False, timeout: float = 30.0) -> None:
    """Stops server processes: SIGTERM to each (SIGINT when `interrupt`: for a profiled one, as
    uvicorn re-raises the signal it caught after shutting down, and SIGINT's KeyboardInterrupt still
    lets cProfile write its file), then waits up to `timeout` s for each and kills one that is left.
    None and processes that have already exited are skipped."""
    live = [p for p in procs if p is not None and p.poll() is None]
    for p in live:
        p.send_signal(signal.SIGINT if interrupt else signal.SIGTERM)
    for p in live:
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)

"""``chromafuse serve``: one FastAPI app holding the HTTP API (``api``) and the web page (``page``, mounted
at ``/``), run by uvicorn until Ctrl-C or SIGTERM; either stops it cleanly and removes its results folder."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

from ..inference.batcher import DynamicBatcher
from ..inference.colorizer import Colorizer
from .limits import ServeLimits
from .page import build_app


def build_server_app(colorizer: Colorizer, workroot: Path, limits: ServeLimits, batcher: DynamicBatcher):
    """The ASGI app: ``/api/...`` routes, then the page at ``/``."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr
    from fastapi import FastAPI

    from .api import api_router

    app = FastAPI(title="chromafuse", docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None)
    app.include_router(api_router(colorizer, batcher, limits))
    system_fonts = ["ui-sans-serif", "system-ui", "sans-serif"]
    theme = gr.themes.Default(font=system_fonts, font_mono=["ui-monospace", "monospace"])
    return gr.mount_gradio_app(
        app,
        build_app(colorizer, workroot, limits),
        path="/",
        footer_links=[],
        allowed_paths=[str(workroot)],
        max_file_size=f"{limits.max_file_mb}mb",
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        enable_monitoring=False,
        theme=theme,
    )


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a taken port is an OSError with its reason."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def serve(
    colorizer: Colorizer,
    host: str = "127.0.0.1",
    port: int = 7860,
    limits: ServeLimits = ServeLimits(),
    max_batch: int = 8,
    max_wait_ms: float = 5.0,
    announce=print,
) -> None:
    """Serve the page and the API; block until Ctrl-C or SIGTERM."""
    import uvicorn

    def interrupt(signum, frame):
        raise KeyboardInterrupt  # SIGTERM (systemd, docker stop, kill) stops as Ctrl-C does

    sock = _bind(host, port)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, interrupt) if in_main_thread else None
    workroot = Path(tempfile.mkdtemp(prefix="chromafuse-serve-"))
    batcher = DynamicBatcher(colorizer, max_batch, max_wait_ms, max_queue=limits.max_queue)
    server = thread = None
    try:
        app = build_server_app(colorizer, workroot, limits, batcher)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=10))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="chromafuse-http", daemon=True)
        thread.start()
        while not server.started:
            if not thread.is_alive():
                raise OSError("the server stopped while starting (see the messages above)")
            time.sleep(0.05)
        shown = f"[{host}]" if ":" in host else host
        announce(
            f"chromafuse serve: http://{shown}:{port}/ and the API at http://{shown}:{port}/api (model {colorizer.name}; Ctrl-C to stop)"
        )
        while thread.is_alive():
            thread.join(0.5)
    finally:
        if server is not None and thread is not None:
            server.should_exit = True  # uvicorn finishes the requests in flight, then returns
            thread.join(30)
        batcher.close()
        sock.close()
        shutil.rmtree(workroot, ignore_errors=True)
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)

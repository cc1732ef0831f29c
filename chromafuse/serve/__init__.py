"""``chromafuse serve``: the web page (``page``) and the HTTP API (``api``) on one server (``server``), over the
same Colorizer as the command line; concurrent API requests share forward passes (``inference.batcher``)."""

from .limits import ServeLimits
from .page import PageResult, build_app, colorize_uploads, missing_extra, summary_markdown
from .server import build_server_app, serve

__all__ = [
    "PageResult",
    "ServeLimits",
    "build_app",
    "build_server_app",
    "colorize_uploads",
    "missing_extra",
    "serve",
    "summary_markdown",
]

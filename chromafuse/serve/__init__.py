"""``chromafuse serve``: the local web page (``page``) over the same Colorizer as the command line."""

from .page import PageResult, ServeLimits, build_app, colorize_uploads, missing_extra, serve, summary_markdown

__all__ = ["PageResult", "ServeLimits", "build_app", "colorize_uploads", "missing_extra", "serve", "summary_markdown"]

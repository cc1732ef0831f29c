"""What the server accepts: upload size, pixel count, files per click, requests held at a time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeLimits:
    max_file_mb: int = 50
    max_pixels: int = 50_000_000
    max_files: int = 100  # the page: files per click
    max_queue: int = 16  # the API: requests held at a time (decoding, waiting or in the model); beyond it, 503

    def __post_init__(self):
        if self.max_file_mb < 1 or self.max_pixels < 1 or self.max_files < 1 or self.max_queue < 1:
            raise ValueError("--max-file-mb, --max-megapixels and --max-queue must be positive")

"""Progress lines for long work, shown only when stderr is a terminal (never in logs or pipes)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """A single self-overwriting status line: `label: 120,000 of 1,500,000 lines (98,000/s)`."""

    def __init__(self, label: str, total: int | None = None, unit: str = "events",
                 stream: TextIO | None = None, every: float = 0.25):
        self.label = label
        self.total = total
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = every
        self.start = time.monotonic()
        self._last = 0.0
        self.count = 0

    def update(self, count: int, force: bool = False) -> None:
        self.count = count
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < self.every):
            return
        self._last = now
        rate = count / max(now - self.start, 1e-9)
        of = f" of {self.total:,}" if self.total else ""
        self.stream.write(f"\r{self.label}: {count:,}{of} {self.unit} ({rate:,.0f}/s)   ")
        self.stream.flush()

    def status(self, text: str) -> None:
        """Replace the line with a phase of the work (e.g. the table being computed)."""
        if self.enabled:
            self.stream.write(f"\r{self.label}: {text}".ljust(79) + " ")
            self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            elapsed = time.monotonic() - self.start
            of = f" of {self.total:,}" if self.total else ""
            self.stream.write(f"\r{self.label}: {self.count:,}{of} {self.unit}, {elapsed:.1f} s".ljust(79) + "\n")
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.done()

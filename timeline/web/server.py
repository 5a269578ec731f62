"""Running the web app on this computer: in a background thread on a free port (the browser tests and the
screenshots of `make demo`), and taking screenshots of its pages with the system's Chromium."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Debian's Chromium (package `chromium`): Playwright drives it, no browser is downloaded
CHROMIUM = "/usr/bin/chromium"
HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextmanager
def running(timeline: Any, host: str = HOST, port: int | None = None, app: Any = None) -> Iterator[str]:
    """The app over `timeline` (or `app`) served on `host` (a free port by default) in a thread; yields its
    base URL."""
    import uvicorn

    from .app import create_app

    port = port or free_port(host)
    server = uvicorn.Server(uvicorn.Config(app or create_app(timeline), host=host, port=port, log_level="warning",
                                           access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, name="timeline-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the web app did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def launch(playwright: Any) -> Any:
    """Chromium from the system (never downloaded); --no-sandbox where the tests run as root."""
    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"{CHROMIUM} not found: install Debian's chromium package (.ci/ensure-chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])


def wait_drawn(page: Any, timeout_ms: int = 20_000) -> None:
    """Wait until every chart of the page is drawn."""
    page.wait_for_function("Array.from(document.querySelectorAll('.chart')).every(e => e.dataset.drawn)",
                           timeout=timeout_ms)


def screenshots(timeline: Any, out: str | Path, pages: Sequence[tuple[str, str]]) -> list[Path]:
    """Full-page screenshots of the app's pages: `pages` = (file stem, path with query)."""
    from playwright.sync_api import sync_playwright

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with running(timeline) as base, sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            for stem, path in pages:
                page.goto(base + path)
                wait_drawn(page)
                target = out_dir / f"{stem}.png"
                page.screenshot(path=str(target), full_page=True)
                written.append(target)
        finally:
            browser.close()
    return written

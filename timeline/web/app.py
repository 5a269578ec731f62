"""The web app of `timeline serve`: a cohort page and a page per patient, read-only.

`create_app(timeline)` makes a Starlette app over an open `Timeline`. Every page reads one view of the
projections through `Timeline.as_of` (the file as it is; recomputed as of a date and as known at a moment, the
path of `timeline sql --as-of`; a patient page with an as-of or known-at replays that one patient by the same
models) and never writes the store or the projection file. Templates are Jinja with autoescape; chart data
goes into the page as JSON in `<script type="application/json">` elements (`tojson` escapes `<`, `>`, `&`, `'`),
read by `static/app.js`; the page runs no inline script and a Content-Security-Policy allows nothing but this
server. The Vega, Vega-Lite and vega-embed files are shipped in `static/vendor/` (no CDN: works offline).

Requests run one at a time (a lock): the Timeline's store connection and warm replay connections are not
shared between threads. The cohort page is cached per (store position, file state, as-of, known-at, filters).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..clock import as_date, as_utc, us_to_datetime
from ..projections.parameters import Params, registry, resolve
from ..queries.labels import label
from .charts import curve_chart, swimmer_chart

HERE = Path(__file__).resolve().parent
CSP = ("default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
CACHE_SIZE = 16


class BadRequest(ValueError):
    """A malformed query parameter (a date, a timestamp, a column)."""


def _templates() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["plus"] = lambda d: "" if d is None else (f"{d:+d}" if d else "0")
    env.filters["words"] = lambda s: "" if s is None else label(s)
    return env


def _when(request: Request) -> tuple[date | None, datetime | None]:
    """The as-of date and the known-at moment of a request (empty = no limit / now)."""
    q = request.query_params
    try:
        as_of = as_date(q.get("as_of") or None)
    except ValueError:
        raise BadRequest(f"as_of: {q.get('as_of')!r} is not a date YYYY-MM-DD") from None
    try:
        known = as_utc(q.get("known_at") or None)
    except ValueError:
        raise BadRequest(f"known_at: {q.get('known_at')!r} is not an ISO 8601 moment") from None
    return as_of, known


class Pages:
    """The app's handlers over one Timeline (requests one at a time)."""

    def __init__(self, timeline: Any):
        self.tl = timeline
        self.env = _templates()
        self.lock = threading.Lock()
        self.cache: OrderedDict[tuple, str] = OrderedDict()

    # -- what every page states -------------------------------------------------------------------
    def _context(self, view: Any, as_of: date | None, known: datetime | None) -> dict[str, Any]:
        params: Params = view.state.params if view.state is not None else resolve()
        position = self.tl.store.max_position()
        file_position = view.state.position if view.state is not None else None
        return {
            "as_of": as_of, "known_at": known,
            "known_text": known.isoformat() if known else
            f"now (store clock {us_to_datetime(self.tl.store.now_us()).isoformat(timespec='seconds')})",
            "store_position": position, "file_position": file_position, "view": view.description,
            "notes": view.notes, "params": [(p.name, params[p.name], p.unit, p.name in params.overridden)
                                            for p in registry().values()],
            "overridden": sorted(params.overridden),
        }

    def _render(self, name: str, **context: Any) -> HTMLResponse:
        html = self.env.get_template(name).render(**context)
        return HTMLResponse(html, status_code=404 if name == "missing.html" else 200)

    @staticmethod
    def _controls(request: Request, keep: list[str], start: date | None, end: date | None,
                  as_of: date | None) -> dict[str, Any]:
        """The as-of form: the query parameters it keeps, and the slider's range (one step per day)."""
        from urllib.parse import urlencode

        kept = {k: request.query_params.get(k) for k in keep}
        out: dict[str, Any] = {"keep": kept, "reset_query": urlencode({k: v for k, v in kept.items() if v}),
                               "slider_start": None, "slider_end": None}
        if start is not None and end is not None and end > start:
            value = min(max(as_of, start), end) if as_of is not None else end
            out |= {"slider_start": start.isoformat(), "slider_end": end.isoformat(),
                    "slider_days": (end - start).days, "slider_value": (value - start).days}
        return out

    def _cohort_span(self) -> tuple[date | None, date | None]:
        """The first and last clinical dates of the cohort as the projection file holds it."""
        with self.tl.as_of() as view:
            row = view.sql("SELECT min(first_event_on) AS a, max(last_event_on) AS b FROM patients").row(0)
        return row[0], row[1]

    # -- pages ------------------------------------------------------------------------------------------
    def cohort(self, request: Request) -> Response:
        from .cohort import FILTERS, STRATIFY, cohort_page

        as_of, known = _when(request)
        q = request.query_params
        by = q.get("by") or None
        filters = {c: q.get(c) or None for c in FILTERS}
        search, queries = q.get("q") or None, q.get("queries") or None
        started = time.perf_counter()
        with self.lock:
            key = (self.tl.store.max_position(), self._file_stamp(), as_of, known, by, search, queries,
                   tuple(sorted(filters.items())))
            if key in self.cache:
                self.cache.move_to_end(key)
                return HTMLResponse(self.cache[key], headers={"X-Timeline-Cache": "hit"})
            with self.tl.as_of(as_of, known) as view:
                page = cohort_page(view, q=search, filters=filters, queries=queries, by=by)
                context = self._context(view, as_of, known)
            context |= self._controls(request, ["q", *FILTERS, "queries", "by"], *self._cohort_span(), as_of)
        links = {pid: f"/patient/{pid}" for pid in page.swimmer["swimmer_lanes"]["patient_id"].to_list()}
        charts = {f"curve-{c.endpoint}": curve_chart(c.rows, c.title, c.kind) for c in page.curves if c.rows.height}
        if page.swimmer["swimmer_lanes"].height:
            charts["swimmer"] = swimmer_chart(page.swimmer["swimmer_lanes"], page.swimmer["swimmer_spans"],
                                              page.swimmer["swimmer_markers"], links)
        html = self.env.get_template("cohort.html").render(
            page=page, charts=charts, filters=filters, search=search or "", queries=queries or "", by=by or "",
            stratify=STRATIFY, server_ms=1000 * (time.perf_counter() - started), **context)
        with self.lock:
            self.cache[key] = html
            while len(self.cache) > CACHE_SIZE:
                self.cache.popitem(last=False)
        return HTMLResponse(html, headers={"X-Timeline-Cache": "miss"})

    def patient(self, request: Request) -> Response:
        from .patient import lanes_spec, patient_page

        pid = request.path_params["patient_id"]
        as_of, known = _when(request)
        mode = "date" if request.query_params.get("axis") == "date" else "day"
        whole = request.query_params.get("window") == "all"
        started = time.perf_counter()
        with self.lock:
            facts = self.tl.facts(pid, known)
            if not facts:
                return self._render("missing.html", patient_id=pid, known_at=known)
            if as_of is None and known is None:
                view = self.tl.as_of()
            else:
                view = self.tl.as_of(as_of, known, patients=[pid])
            with view:
                page = patient_page(view, facts, pid, as_of, known)
                context = self._context(view, as_of, known)
        params = {name: value for name, value, _, _ in context["params"]}
        spec = lanes_spec(page, params, mode, whole)
        dates = [f.occurred_on for f in facts]
        context |= self._controls(request, ["axis", "window"], min(dates), max(dates), as_of)

        def axis_query(to: str, key: str = "axis") -> str:
            from urllib.parse import urlencode

            return urlencode({k: v for k, v in {**request.query_params, key: to}.items() if v})

        return self._render("patient.html", page=page, charts={"course": spec} if spec else {}, mode=mode, whole=whole,
                            axis_query=axis_query, server_ms=1000 * (time.perf_counter() - started), **context)

    def _file_stamp(self) -> tuple[float, int] | None:
        path = self.tl.projector().path
        try:
            st = path.stat()
        except OSError:
            return None
        return (st.st_mtime, st.st_size)


def _headers(handler: Callable[[Request], Response]) -> Callable[[Request], Any]:
    async def run(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        started = time.perf_counter()
        try:
            response = await run_in_threadpool(handler, request)
        except BadRequest as e:
            response = HTMLResponse(f"<!DOCTYPE html><title>bad request</title><p>{_escape(str(e))}</p>", 400)
        except (ValueError, LookupError) as e:
            response = HTMLResponse(f"<!DOCTYPE html><title>refused</title><p>{_escape(str(e))}</p>", 400)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        response.headers["Server-Timing"] = f"app;dur={1000 * (time.perf_counter() - started):.1f}"
        return response
    return run


def _escape(text: str) -> str:
    import html

    return html.escape(text)


def create_app(timeline: Any) -> Starlette:
    """The read-only web app over `timeline` (an open `Timeline`)."""
    pages = Pages(timeline)
    app = Starlette(routes=[
        Route("/", _headers(pages.cohort)),
        Route("/patient/{patient_id}", _headers(pages.patient)),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ])
    app.state.pages = pages  # the handlers (the benchmark empties their cache)
    return app

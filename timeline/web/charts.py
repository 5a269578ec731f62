"""Vega-Lite specifications of the pages' charts, built from projection rows (plain dicts and polars frames).

The browser draws them with the Vega, Vega-Lite and vega-embed files shipped in `static/vendor/`. Nothing
here computes a clinical fact: the rows are the projection tables' rows, the thresholds the rule parameters
in force, the curves the estimators' tables.

* `patient_lanes`: the course of one patient on a shared day (or date) axis, in lanes: therapy and
  transplant, ANC, platelets, chimerism, MRD, viral loads, GVHD, infections and complications, disease,
  amendments (corrected and retracted events).
* `curve_chart`: Kaplan–Meier or cumulative-incidence step curves with their 95% band, per group.
* `swimmer_chart`: one lane per patient, linking to the patient's page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import polars as pl

WIDTH = 860
SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"  # an identifier: never fetched
COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]

TOOLTIP = [{"field": "what", "title": "event"}, {"field": "when", "title": "date (day)"},
           {"field": "value", "title": "value"}, {"field": "id", "title": "event id"},
           {"field": "source", "title": "source"}, {"field": "amended", "title": "corrected / retracted"}]


def _iso(d: Any) -> str | None:
    return d.isoformat() if isinstance(d, date) else d


class Axis:
    """Where a row sits on the x axis: its post-transplant day (from day 0), or its date."""

    def __init__(self, mode: str, day0: date | None):
        self.mode = mode if day0 is not None else "date"
        self.day0 = day0

    def x(self, day: int | None, on: date | None) -> Any:
        if self.mode == "day":
            if day is not None:
                return day
            return (on - self.day0).days if on is not None and self.day0 is not None else None
        return _iso(on) if on is not None else (_iso(self.day0.fromordinal(self.day0.toordinal() + day))
                                                if day is not None and self.day0 is not None else None)

    def encoding(self, field: str = "x", title: bool = False, domain: Sequence[Any] | None = None) -> dict[str, Any]:
        enc: dict[str, Any] = {"field": field, "type": "quantitative" if self.mode == "day" else "temporal",
                               "title": (("day from stem-cell infusion (day 0)" if self.mode == "day" else "date")
                                         if title else None)}
        if domain is not None:
            enc["scale"] = {"domain": list(domain), "nice": False}
        if not title:
            enc["axis"] = {"labels": True, "title": None, "grid": True}
        return enc


def _when(on: date | None, day: int | None) -> str:
    return f"{_iso(on) or '?'}" + (f" (day {day:+d})" if day is not None else "")


class Lanes:
    """Collects the rows of each lane, then makes one vertically concatenated spec with a shared x axis."""

    def __init__(self, axis: Axis, info: Mapping[str, Mapping[str, str]]):
        self.axis = axis
        self.info = info
        self.lanes: list[dict[str, Any]] = []
        self.xs: list[Any] = []

    def point(self, on: date | None, day: int | None, what: str, value: str = "", event_id: str | None = None,
              **extra: Any) -> dict[str, Any]:
        """A row for a mark: x, the tooltip fields (with the event's id, source and amendments when known)."""
        x = self.axis.x(day, on)
        if x is not None:
            self.xs.append(x)
        got = self.info.get(event_id or "", {})
        return {"x": x, "what": what, "when": _when(on, day), "value": value, "id": got.get("id", ""),
                "source": got.get("source", ""), "amended": got.get("amended", ""),
                "corrected": bool(got.get("amended")), **extra}

    def span(self, start: tuple[date | None, int | None], end: tuple[date | None, int | None], what: str,
             value: str = "", **extra: Any) -> dict[str, Any]:
        row = self.point(start[0], start[1], what, value, **extra)
        row["x2"] = self.axis.x(end[1], end[0])
        if row["x2"] is not None:
            self.xs.append(row["x2"])
        row["when"] += " to " + _when(end[0], end[1])
        return row

    def add(self, title: str, layers: list[dict[str, Any]], height: int = 70) -> None:
        """A lane, if one of its layers has rows (thresholds alone make no lane)."""
        if any(layer["data"]["values"] for layer in layers if "data" in layer and not layer.get("threshold")):
            self.lanes.append({"title": title, "height": height, "layers": layers})

    def spec(self, day0_x: Any, window: tuple[Any, Any] | None = None) -> dict[str, Any]:
        """The lanes, concatenated; `window` (x from, x to) limits the axis (marks outside are clipped)."""
        xs = [x for x in self.xs if x is not None]
        if not xs:
            return {}
        lo, hi = min(xs), max(xs)
        if window is not None:
            lo, hi = max(lo, window[0]) if window[0] is not None else lo, min(hi, window[1]) if window[1] is not None else hi
        if self.axis.mode == "day":
            pad = max(2, round(0.02 * (hi - lo)))
            domain = [min(lo, 0) - pad, max(hi, 0) + pad]
        else:
            domain = [lo, hi]
        views = []
        for i, lane in enumerate(self.lanes):
            last = i == len(self.lanes) - 1
            layers = [self._filled(layer, last, domain) for layer in lane["layers"]]
            if day0_x is not None:
                layers.append({"data": {"values": [{"x": day0_x}]}, "mark": {"type": "rule", "strokeDash": [2, 2],
                                                                               "color": "#222"},
                               "encoding": {"x": self.axis.encoding(title=last, domain=domain)}})
            views.append({"title": {"text": lane["title"], "anchor": "start", "fontSize": 12},
                          "width": WIDTH, "height": lane["height"], "layer": layers})
        return {"$schema": SCHEMA, "vconcat": views, "spacing": 14, "resolve": {"scale": {"x": "shared", "color": "independent", "fill": "independent", "shape": "independent",
                                          "stroke": "independent"},
                                "legend": {"color": "independent", "fill": "independent", "shape": "independent"}},
                "config": {"view": {"stroke": "#e5e5e5"}, "axis": {"labelFontSize": 10, "titleFontSize": 11}}}


    def _filled(self, layer: dict[str, Any], last: bool, domain: list[Any]) -> dict[str, Any]:
        """The layer (and its sub-layers) with the shared x encoding where it was left as None."""
        layer = dict(layer)
        layer.pop("threshold", None)
        if "layer" in layer:
            layer["layer"] = [self._filled(sub, last, domain) for sub in layer["layer"]]
        if "encoding" in layer:
            enc = dict(layer["encoding"])
            if "x" in enc and enc["x"] is None:
                enc["x"] = self.axis.encoding(title=last, domain=domain)
            if "x2" in enc and enc["x2"] is None:
                enc["x2"] = {"field": "x2"}
            layer["encoding"] = enc
        return layer


def values_layer(rows: list[dict[str, Any]], mark: dict[str, Any], encoding: dict[str, Any]) -> dict[str, Any]:
    """A layer drawing `rows` (the x encoding is filled in by `Lanes.spec`)."""
    enc = {"x": None, "tooltip": TOOLTIP, **encoding}
    return {"data": {"values": rows}, "mark": {**mark, "clip": True}, "encoding": enc}


def rule_y(value: float, label: str) -> dict[str, Any]:
    """A horizontal threshold line with its value written at the right edge, outside the data."""
    return {"threshold": True, "data": {"values": [{"y": value, "label": label}]},
            "layer": [{"mark": {"type": "rule", "strokeDash": [5, 3], "color": "#555"},
                       "encoding": {"y": {"field": "y", "type": "quantitative"}}},
                      {"mark": {"type": "text", "align": "left", "dx": 4, "color": "#555", "fontSize": 10},
                       "encoding": {"y": {"field": "y", "type": "quantitative"},
                                    "x": {"value": WIDTH}, "text": {"field": "label"}}}]}


def rule_x(rows: list[dict[str, Any]], colour: str) -> dict[str, Any]:
    """Vertical lines at rows' x (engraftment days), their label above the view."""
    return {"data": {"values": rows},
            "layer": [{"mark": {"type": "rule", "color": colour, "strokeWidth": 1.5, "clip": True},
                       "encoding": {"x": None, "tooltip": TOOLTIP}},
                      {"mark": {"type": "text", "dy": -8, "color": colour, "fontSize": 10, "baseline": "bottom"},
                       "encoding": {"x": None, "y": {"value": 0}, "text": {"field": "label"}}}]}


def curve_chart(curves: pl.DataFrame, title: str, kind: str, percent: bool = True) -> dict[str, Any]:
    """Step curves with their 95% band: rows `group, time, estimate, lower, upper` (one step per row)."""
    y_title = ("survival" if kind == "km" else "cumulative incidence") + (" (%)" if percent else "")
    fmt = ".0%" if percent else ".2f"
    enc_x = {"field": "time", "type": "quantitative", "title": "days from stem-cell infusion",
             "scale": {"domainMin": 0, "nice": False}}
    colour = {"field": "group", "type": "nominal", "title": None, "scale": {"range": COLOURS},
              "legend": {"orient": "bottom"}}
    tip = [{"field": "group"}, {"field": "time", "title": "day"},
           {"field": "estimate", "format": ".3f"}, {"field": "lower", "format": ".3f", "title": "95% CI lower"},
           {"field": "upper", "format": ".3f", "title": "95% CI upper"}]
    return {"$schema": SCHEMA, "title": {"text": title, "anchor": "start", "fontSize": 12}, "width": 380, "height": 200,
            "data": {"values": curves.to_dicts()},
            "layer": [{"mark": {"type": "area", "interpolate": "step-after", "opacity": 0.15},
                       "encoding": {"x": enc_x, "y": {"field": "lower", "type": "quantitative"},
                                    "y2": {"field": "upper"}, "color": colour}},
                      {"mark": {"type": "line", "interpolate": "step-after"},
                       "encoding": {"x": enc_x, "y": {"field": "estimate", "type": "quantitative", "title": y_title,
                                                      "scale": {"domain": [0, 1]}, "axis": {"format": fmt}},
                                    "color": colour, "tooltip": tip}}]}


def swimmer_chart(lanes: pl.DataFrame, spans: pl.DataFrame, markers: pl.DataFrame, links: Mapping[str, str]
                  ) -> dict[str, Any]:
    """One lane per patient (day axis from day 0); clicking a lane opens the patient's page."""
    order = lanes["patient_id"].to_list()
    y = {"field": "patient_id", "type": "nominal", "sort": order, "title": None}
    rows = [dict(r, url=links[r["patient_id"]]) for r in lanes.to_dicts()]
    span_rows = [dict(r, url=links[r["patient_id"]]) for r in spans.to_dicts() if r["patient_id"] in links]
    marker_rows = [dict(r, url=links[r["patient_id"]]) for r in markers.to_dicts() if r["patient_id"] in links]
    x = {"field": "start_day", "type": "quantitative", "title": "days from stem-cell infusion"}
    return {"$schema": SCHEMA, "width": WIDTH, "height": {"step": 18},
            "layer": [
                {"data": {"values": rows}, "mark": {"type": "rule", "color": "#999"},
                 "encoding": {"y": y, "x": x, "x2": {"field": "end_day"}, "href": {"field": "url"},
                              "tooltip": [{"field": "patient_id"}, {"field": "end_day", "title": "last day"}]}},
                {"data": {"values": span_rows}, "mark": {"type": "bar", "height": 8, "opacity": 0.8},
                 "encoding": {"y": y, "x": x, "x2": {"field": "end_day"}, "href": {"field": "url"},
                              "fill": {"field": "kind", "type": "nominal", "title": "span",
                                       "scale": {"range": ["#f4b6d8", "#3b6fb6", "#c9c9c9", "#b0b0b0"]}},
                              "tooltip": [{"field": "patient_id"}, {"field": "kind"}, {"field": "start_day"},
                                          {"field": "end_day"}]}},
                {"data": {"values": marker_rows}, "mark": {"type": "point", "filled": True, "size": 40},
                 "encoding": {"y": y, "x": {"field": "day", "type": "quantitative"}, "href": {"field": "url"},
                              "shape": {"field": "kind", "type": "nominal", "title": "event"},
                              "color": {"field": "kind", "type": "nominal", "title": "event"},
                              "tooltip": [{"field": "patient_id"}, {"field": "kind"}, {"field": "day"}]}},
                {"data": {"values": [{"start_day": 0}]}, "mark": {"type": "rule", "strokeDash": [2, 2]},
                 "encoding": {"x": x}}]}

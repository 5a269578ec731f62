"""`timeline serve` in a real browser: Debian's Chromium driven by Playwright (no browser download), the app
served in-process on a free port of 127.0.0.1.

Every page visited is checked for requests leaving 127.0.0.1 (intercepted and refused, and recorded) and for
console errors. The expectations are read from the projections through the same API (`Timeline.as_of`), not
typed in: the page must show what the rules say.
"""

from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

from timeline.app import Timeline
from timeline.web.server import launch, running, wait_drawn

SEED_IDS = ["JH-01", "JH-02", "JH-03", "JH-04", "JH-05"]


@pytest.fixture(scope="module")
def base(seed_timeline):
    with running(seed_timeline) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch(pw)
        yield b
        b.close()


class Watched:
    """A page whose requests and console are recorded; requests to any host but 127.0.0.1 are refused."""

    def __init__(self, browser):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.context.route("**/*", self._route)
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def _route(self, route):
        url = route.request.url
        self.requests.append(url)
        host = urlparse(url).hostname
        if url.startswith("data:") or host == "127.0.0.1":
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def open(self, url: str):
        response = self.page.goto(url)
        assert response is not None and response.status == 200, url
        wait_drawn(self.page)
        return self.page

    def close(self):
        self.context.close()


@pytest.fixture
def watched(browser):
    w = Watched(browser)
    yield w
    w.close()
    assert w.outside == [], f"requests left 127.0.0.1: {w.outside}"
    assert w.errors == [], f"console errors: {w.errors}"
    assert w.dialogs == []
    assert w.requests and all(urlparse(u).hostname == "127.0.0.1" for u in w.requests if not u.startswith("data:"))


def _engraftment(tl: Timeline, patient: str, as_of: str | None = None) -> dict:
    with (tl.as_of(as_of, patients=[patient]) if as_of else tl.as_of()) as view:
        return view.sql("SELECT * FROM engraftment WHERE patient_id = ?", [patient]).row(0, named=True)


def test_cohort_page_loads_the_seed_cohort(watched, base):
    page = watched.open(base + "/")
    assert page.locator("h1").inner_text() == "Cohort: 5 of 5 patients"
    assert page.locator("#patients tbody tr td:first-child").all_inner_texts() == SEED_IDS
    assert page.locator(".chart[data-drawn=true] svg").count() == 10  # 9 curves and the swimmer plot
    assert page.locator("table.at-risk").count() == 9
    assert "no limit" in page.locator("#state-as-of").inner_text()
    assert "Store position: 607 stored events" in page.locator("#state").inner_text()
    # stratified: the log-rank or Gray p-value under each chart
    page = watched.open(base + "/?by=donor")
    assert page.locator("p.pvalue").count() == 9
    assert page.locator("#p-cmv_reactivation").inner_text().startswith("Gray's test: p = ")
    assert page.locator("#p-grfs").inner_text().startswith("log-rank: p = ")
    assert page.locator("#p-os").inner_text() == "no event yet: nothing to test"  # nobody died in the seed
    # a filter narrows the list
    page.select_option("#filter-donor", "matched_sibling")
    page.click("#filter-apply")
    wait_drawn(page)
    assert page.locator("#patients tbody tr td:first-child").all_inner_texts() == ["JH-01"]


def test_jh03_page_shows_its_engraftment_days(watched, base, seed_timeline):
    expected = _engraftment(seed_timeline, "JH-03")
    page = watched.open(base + "/patient/JH-03")
    assert page.locator("#neutrophil-engraftment").inner_text().startswith(
        f"Neutrophil engraftment: day +{expected['neutrophil_day']} ({expected['neutrophil_on']})")
    assert page.locator("#platelet-engraftment").inner_text().startswith(
        f"Platelet engraftment: day +{expected['platelet_day']} ({expected['platelet_on']})")
    chart = page.locator("#course svg").inner_html()
    assert f"engraftment day +{expected['neutrophil_day']}" in chart
    assert f"engraftment day +{expected['platelet_day']}" in chart
    for lane in ("Therapy and transplant", "ANC ×10⁹/L", "Platelets ×10⁹/L", "Donor chimerism", "MRD",
                 "Viral load", "Disease status"):
        assert lane in chart, lane
    # hovering a mark shows the event, its id and source (a chimerism test: one event per point)
    with seed_timeline.as_of() as view:
        test = view.sql("SELECT event_id, donor_percent FROM chimerism WHERE patient_id = 'JH-03' "
                        "ORDER BY occurred_on LIMIT 1").row(0, named=True)
    point = page.locator("#course svg [aria-label*='chimerism'][aria-roledescription='point']").first
    point.hover(force=True)
    tip = page.locator("#vg-tooltip-element")
    tip.wait_for(state="visible")
    text = tip.inner_text()
    assert test["event_id"][:8] in text and "recorded by" in text and f"{test['donor_percent']:g}% donor" in text
    assert page.locator("#history tr").count() > 100


def test_moving_the_as_of_control_changes_what_is_shown_as_the_rules_say(watched, base, seed_timeline):
    now = _engraftment(seed_timeline, "JH-03")
    before = (now["neutrophil_on"].fromordinal(now["neutrophil_on"].toordinal() - 4)).isoformat()
    then = _engraftment(seed_timeline, "JH-03", before)
    assert then["neutrophil_status"] != "engrafted"  # the rule's answer for that date
    page = watched.open(base + "/patient/JH-03")
    page.fill("#as-of", before)
    page.click("#apply")
    wait_drawn(page)
    assert page.locator("#state-as-of").inner_text() == before
    assert page.locator("#neutrophil-engraftment").inner_text() == \
        f"Neutrophil engraftment: {then['neutrophil_status'].replace('_', ' ')}"
    assert f"engraftment day +{now['neutrophil_day']}" not in page.locator("#course svg").inner_html()
    # the slider back to its end: the latest date, engrafted again
    page.evaluate("""() => { const r = document.getElementById('as-of-slider'); r.value = r.max;
                             r.dispatchEvent(new Event('change')); }""")
    page.wait_for_load_state("load")
    wait_drawn(page)
    assert page.locator("#neutrophil-engraftment").inner_text().startswith(
        f"Neutrophil engraftment: day +{now['neutrophil_day']}")
    # the cohort page as of an early date: the transplants known by then (the others not transplanted yet)
    with seed_timeline.as_of("2023-01-01") as view:
        listed = view.sql("SELECT patient_id, coalesce(CAST(hsct_on AS VARCHAR), '–') AS hsct FROM patients "
                          "ORDER BY hsct_on NULLS LAST, patient_id")
    page = watched.open(base + "/?as_of=2023-01-01")
    assert page.locator("#patients tbody tr td:first-child").all_inner_texts() == listed["patient_id"].to_list()
    assert page.locator("#patients tbody tr td:nth-child(2)").all_inner_texts() == listed["hsct"].to_list()
    assert 0 < listed.filter(listed["hsct"] != "–").height < 5


def test_known_at_shows_the_data_as_they_stood(watched, base, seed_timeline):
    facts = seed_timeline.facts("JH-03")
    first = min(f.original.recorded_at for f in facts)
    page = watched.open(base + "/patient/JH-03?known_at=" + first.isoformat().replace("+00:00", "Z"))
    assert first.isoformat()[:19] in page.locator("#state-known-at").inner_text()
    shown = len(seed_timeline.events("JH-03", known_at=first))
    assert page.locator("#history h2").inner_text().startswith(f"Events ({shown} visible")


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_the_app_never_writes_and_escapes_what_it_shows(tmp_path, browser):
    hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    folder = tmp_path / "data"
    with Timeline.open(str(folder)) as tl:
        tl.ingest([
            {"type": "patient_registered", "patient_id": "X-1", "occurred_on": "2024-01-01", "birth_date": "2000-01-01",
             "sex": "female", "source": hostile},
            {"type": "infection", "patient_id": "X-1", "occurred_on": "2024-02-01", "category": "bacterial",
             "organism": hostile, "note": hostile},
        ])
        infection = tl.events("X-1")[1].event_id
        tl.correct(infection, {"site": "bloodstream"}, reason="culture report read again", by="dr.web")
        tl.record({"type": "engraftment_syndrome", "patient_id": "X-1", "occurred_on": "2024-02-03"})
        tl.retract(tl.events("X-1")[-1].event_id, reason="entered for the wrong patient", by="dm.web")
        tl.project()
    before = _digest(folder)
    with Timeline.open(str(folder), create=False) as tl, running(tl) as url:
        for path in ("/", "/patient/X-1", "/patient/X-1?as_of=2024-01-15", "/?q=%3Cscript%3E"):
            body = urllib.request.urlopen(url + path).read().decode()
            assert "<img src=x" not in body and "<script>alert" not in body, path
        headers = urllib.request.urlopen(url + "/").headers
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        w = Watched(browser)
        try:
            page = w.open(url + "/patient/X-1")
            history = page.locator("#history").inner_text()
            assert hostile in history  # shown as text
            assert "by dr.web: culture report read again" in history  # who, when and why
            assert "RETRACTED" in history and "by dm.web: entered for the wrong patient" in history
            assert page.locator("#history tr.retracted").count() == 1
            assert "Corrections and retractions" in page.locator("#course svg").inner_html()
            assert w.dialogs == [] and w.errors == [] and w.outside == []
        finally:
            w.close()
    assert _digest(folder) == before  # neither the store nor the projection file was written


def test_bad_input_is_a_clear_400_and_an_unknown_patient_a_404(base):
    import urllib.error

    for path, status, words in (("/?as_of=yesterday", 400, "as_of: &#x27;yesterday&#x27; is not a date"),
                                ("/?by=patient_id", 400, "cannot stratify by"),
                                ("/patient/NOPE", 404, "No events for patient NOPE")):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + path)
        assert e.value.code == status and words in e.value.read().decode(), path


def test_serve_binds_to_localhost_by_default():
    from timeline.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port) == ("127.0.0.1", 8000)

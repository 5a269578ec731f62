"""Ingest: read JSON Lines and CSV event files, validate every line, prepare events for the store.

Validation happens at the edge (pydantic), every problem of a file is reported at once (line, field,
value, rule), and a file is stored all-or-nothing (`EventStore.append` runs it in one transaction).
Large files are parsed in a worker process while the main process writes, so both cores work.
"""

from __future__ import annotations

import csv
import json
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .events.envelope import ENVELOPE_FIELDS, LINE_MAX_BYTES
from .events import EVENT_ADAPTER, EVENT_TYPES, Event, canonical_json, list_fields, problems_from
from .events import rawjson
from .events.catalogue import content_id_bytes
from .events.problems import Problem
from .store.eventstore import Corrector, Prepared
from .store.facts import CORRECTED, RETRACTED
from .workers import ordered_map


PARALLEL_MIN_BYTES = 8 * 1024 * 1024  # below this, a worker process costs more than it saves


def prepare(event: Event, line: int | None, latest: date) -> Prepared | Problem:
    """A validated event → what the store appends: canonical JSON, id, digest; or the future-date problem."""
    p = _prepare(event, line, latest)
    return p if isinstance(p, Problem) else Prepared._make(p)


def _prepare(event: Event, line: int | None, latest: date) -> tuple | Problem:
    """`prepare` as a plain tuple in Prepared's field order (the hot path of a bulk ingest)."""
    on = event.occurred_on
    if on > latest:
        return Problem("occurred_on", on.isoformat(),
                       f"is in the future of its recording (latest admissible date {latest.isoformat()})", line)
    content = canonical_json(event)
    digest = content_id_bytes(content)
    given = event.event_id
    eid = given.bytes if given is not None else digest
    hx = eid.hex().encode()
    body = b"".join((content[:-1], b',"event_id":"', hx[:8], b"-", hx[8:12], b"-", hx[12:16], b"-",
                     hx[16:20], b"-", hx[20:], b'"}'))
    kind = event.type
    target = None
    if kind == CORRECTED:
        target = event.corrects.bytes
    elif kind == RETRACTED:
        target = event.retracts.bytes
    source_record = event.source_record_id if target is None else None
    return (event.patient_id, eid, digest, kind, on.isoformat(), body, target, line, source_record)


def source_corrector(latest: date) -> Corrector:
    """How a source record ingested again with other content is stored: as an `event_corrected` of its first
    version, dated `latest` (the day it is recorded), whose replacement is the record as it is now."""
    def correct(p: Prepared, first_event_id: bytes) -> Prepared | Problem:
        patient, _eid, _digest, _kind, _on, body, _target, line, source_record = p
        data = json.loads(body)
        replacement = {k: v for k, v in data.items() if k not in ("patient_id", "event_id")}
        correction = {"type": CORRECTED, "patient_id": patient, "occurred_on": latest.isoformat(),
                      "corrects": str(uuid.UUID(bytes=first_event_id)), "replacement": replacement,
                      "reason": f"source record {source_record} ingested again with other content"}
        for key in ("source", "recorded_by"):
            if key in data:
                correction[key] = data[key]
        made = prepare(EVENT_ADAPTER.validate_python(correction), line, latest)
        return made
    return correct


def _problems(exc: ValidationError, line: int | None) -> list[Problem]:
    return [p.at(line) for p in problems_from(exc)]


def prepare_json_lines(lines: Iterable[tuple[int, bytes]], latest: date) -> list[tuple | Problem]:
    """Validate JSON lines (strict JSON types: `true` is not a number) into plain prepared tuples."""
    out: list[tuple | Problem] = []
    validate = EVENT_ADAPTER.validator.validate_json  # = parse_event_json, without the wrapper's overhead
    for n, raw in lines:
        if len(raw) > LINE_MAX_BYTES:
            out.append(Problem("(line)", f"{raw[:40].decode('utf-8', errors='replace')}… ({len(raw):,} bytes)",
                               f"is longer than a line may be: at most {LINE_MAX_BYTES:,} bytes, one event "
                               "(docs/limits.md)", n))
            continue
        try:
            ev = validate(raw, strict=True)
        except ValidationError as e:
            unreadable = rawjson.line_problem(raw, n)  # not UTF-8, too deep, a key twice, not an object
            out.extend([unreadable] if unreadable is not None else _problems(e, n))
            continue
        if rawjson.may_repeat_keys(raw, ev):
            repeated = rawjson.line_problem(raw, n)
            if repeated is not None:
                out.append(repeated)
                continue
        out.append(_prepare(ev, n, latest))
    return out


def prepare_objects(rows: Iterable[tuple[int | None, Any]], latest: date) -> Iterator[Prepared | Problem]:
    """Dicts (public JSON) or event models → prepared events or problems."""
    validate = EVENT_ADAPTER.validate_python
    for n, row in rows:
        if isinstance(row, dict):
            try:
                ev = validate(row)
            except ValidationError as e:
                yield from _problems(e, n)
                continue
        else:
            ev = row
        yield prepare(ev, n, latest)


# -- files -----------------------------------------------------------------------------------------------
CHUNK_BYTES = 2 << 20  # a worker's unit of work: ~10,000 lines
# Blocks handed to the parse workers ahead of the writer (`workers.ordered_map`): a writer slower than the parse
# holds at most this many blocks of prepared events, whatever the file's size.
PARSE_AHEAD_BLOCKS = 8


_BOM = b"\xef\xbb\xbf"


def _blocks(path: Path) -> Iterator[tuple[bytes, int]]:
    """The file as blocks of whole lines, with the number of each block's first line (a UTF-8 byte-order
    mark at the start is skipped, as editors on Windows write one)."""
    line = 1
    with open(path, "rb") as f:
        if f.read(3) != _BOM:
            f.seek(0)
        while True:
            block = f.read(CHUNK_BYTES)
            if not block:
                return
            if not block.endswith(b"\n"):
                block += f.readline()
            yield block, line
            line += block.count(b"\n")


def _is_json_array(path: Path) -> bool:
    """Whether the file holds one JSON array (of events) rather than JSON Lines."""
    with open(path, "rb") as f:
        head = f.read(4096).lstrip(_BOM).lstrip()
    return head.startswith(b"[")


def _array_items(path: Path) -> list[tuple[int, bytes]] | Problem:
    """The events of a JSON array file, numbered 1, 2, … (reported as its lines), or why it cannot be read."""
    items = rawjson.load(path.read_bytes().removeprefix(_BOM), "(file)", 1)
    if isinstance(items, Problem):
        return items
    if not isinstance(items, list):
        return Problem("(file)", path.name, "is not a JSON array of events", 1)
    return [(n, json.dumps(item, ensure_ascii=False).encode()) for n, item in enumerate(items, start=1)]


def _block_lines(block: bytes, first: int) -> Iterator[tuple[int, bytes]]:
    for n, raw in enumerate(block.split(b"\n"), start=first):
        raw = raw.strip()
        if raw:
            yield n, raw


def _prepare_block(args: tuple[bytes, int, date]) -> list[tuple | Problem]:
    # plain tuples cross the process boundary several times faster than named ones
    block, first, latest = args
    return prepare_json_lines(_block_lines(block, first), latest)


def read_json_blocks(path: Path, latest: date, parallel: bool | None = None) -> Iterator[list[tuple | Problem]]:
    """Prepared events of a JSON Lines file, a list per block of lines, in file order; a large file is
    parsed by worker processes (one per core) while this process writes."""
    if _is_json_array(path):
        items = _array_items(path)
        if isinstance(items, Problem):
            yield [items]
            return
        for i in range(0, len(items), 10_000):
            yield prepare_json_lines(items[i:i + 10_000], latest)
        return
    if parallel is None:
        parallel = (os.cpu_count() or 1) > 1 and path.stat().st_size >= PARALLEL_MIN_BYTES
    if not parallel:
        for block, first in _blocks(path):
            yield prepare_json_lines(_block_lines(block, first), latest)
        return
    jobs = ((block, first, latest) for block, first in _blocks(path))
    yield from ordered_map(_prepare_block, jobs, PARSE_AHEAD_BLOCKS)  # plain tuples in Prepared's field order


def read_json_lines(path: Path, latest: date, parallel: bool | None = None) -> Iterator[tuple | Problem]:
    """`read_json_blocks`, one prepared event (or problem) at a time."""
    for block in read_json_blocks(path, latest, parallel):
        yield from block


CSV_MULTI = "|"


def csv_row_to_json(row: dict[str, str | None]) -> dict[str, Any] | list[Problem]:
    """One CSV row → public JSON: empty cell = absent, list fields split on `|`, JSON-typed cells parsed.

    Numbers and booleans are written as text in CSV; they are read as JSON scalars where they parse as
    such, so the model's own rules (types, ranges) decide, with the same messages as for JSON Lines.
    """
    out: dict[str, Any] = {}
    type_name = (row.get("type") or "").strip()
    lists = list_fields(type_name) if type_name in EVENT_TYPES else set()
    for key, cell in row.items():
        if key is None:
            return [Problem("(row)", cell, "has more cells than the header has columns")]
        if cell is None or cell.strip() == "":
            continue
        cell = cell.strip()
        if key in lists:
            out[key] = [part.strip() for part in cell.split(CSV_MULTI) if part.strip()]
        elif key == "replacement":
            value = rawjson.load(cell.encode(), "replacement")
            if isinstance(value, Problem) or not isinstance(value, dict):
                why = value.rule if isinstance(value, Problem) else "is not an object"
                return [Problem("replacement", cell[:80], f"must be a JSON object (the corrected event): {why}")]
            out[key] = value
        elif key in ENVELOPE_FIELDS:
            out[key] = cell
        else:
            out[key] = _scalar(cell)
    return out


def replacement_with(content: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """An event's content with `changes` applied (text values read as CSV cells are; None or "" removes
    the field), without patient_id and event_id: the replacement of a correction."""
    out = {k: v for k, v in content.items() if k not in ("patient_id", "event_id")}
    kind = str(changes.get("type") or out.get("type"))
    lists = list_fields(kind)
    for key, value in changes.items():
        if value is None or value == "":
            out.pop(key, None)
        elif not isinstance(value, str):
            out[key] = value
        elif key in lists:
            out[key] = [part.strip() for part in value.split(CSV_MULTI) if part.strip()]
        elif key in ENVELOPE_FIELDS:
            out[key] = value
        else:
            out[key] = _scalar(value)
    return out


_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|NaN|-?Infinity").fullmatch


def _scalar(cell: str) -> Any:
    """A CSV cell as JSON would have it: true/false, a number (as JSON writes one), else the text."""
    low = cell.lower()
    if low in ("true", "false"):
        return low == "true"
    if _JSON_NUMBER(cell) is None:
        return cell
    try:
        return json.loads(cell)
    except ValueError:  # more digits than Python reads
        return cell


def _delimiter(header: str) -> str:
    """The CSV delimiter: the one of `,` `;` tab that splits the header into the most columns."""
    return max((",", ";", "\t"), key=lambda d: (len(header.split(d)), d == ","))


_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # bytes that are not UTF-8, as read with surrogateescape


def read_csv(path: Path, latest: date) -> Iterator[Prepared | Problem]:
    """A CSV event file: comma-, semicolon- or tab-separated (told by its header row), UTF-8, with or
    without a byte-order mark. A header naming a column twice is refused; a cell that is not UTF-8 is a
    problem of its line and column (the rest of the file is still checked)."""
    with open(path, newline="", encoding="utf-8-sig", errors="surrogateescape") as f:
        header = f.readline()
        f.seek(0)
        reader = csv.DictReader(f, delimiter=_delimiter(header))
        names = [n.strip() for n in reader.fieldnames or []]
        if "type" not in names:
            yield Problem("(header)", header.strip()[:200], "a CSV event file needs a header row naming at least "
                          "`type`, `patient_id`, `occurred_on` (separated by commas, semicolons or tabs)", 1)
            return
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            yield from (Problem(n, None, "is a column twice in the header; give each field once", 1) for n in repeated)
            return
        reader.fieldnames = names
        csv.field_size_limit(LINE_MAX_BYTES)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as e:  # a cell longer than a row may be, or a broken quote
                yield Problem("(row)", None, f"cannot be read as CSV: {e} (a row holds at most {LINE_MAX_BYTES:,} "
                              "bytes, docs/limits.md)", reader.line_num)
                return
            n = reader.line_num
            bad = [k for k, cell in row.items() if isinstance(cell, str) and _NOT_UTF8.search(cell)]
            if bad:
                yield from (Problem(k or "(row)", None, "is not valid UTF-8 (save the file as UTF-8)", n) for k in bad)
                continue
            obj = csv_row_to_json(row)
            if isinstance(obj, list):
                yield from (p.at(n) for p in obj)
                continue
            yield from prepare_objects([(n, obj)], latest)


def file_format(path: Path) -> str:
    suffix = "".join(path.suffixes[-1:]).lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise ValueError(f"{path}: unknown file type {suffix!r}; expected .jsonl/.ndjson (JSON Lines) or .csv")


def check_readable(path: Path) -> None:
    """A file ingest can read: it exists and is a regular file (a folder, a FIFO or a device is refused,
    naming what it is)."""
    import stat

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(f"{path}: is a folder; give the event files in it (e.g. {path}/*.jsonl)")
    if not stat.S_ISREG(mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise ValueError(f"{path}: is {kind}, not a regular file; save the events to a file first")


def file_reader(path: Path, latest: date) -> Callable[[], Iterator[Prepared | Problem]]:
    """A replayable source of prepared events for one file (replayed if the append must be retried)."""
    check_readable(path)
    fmt = file_format(path)
    if fmt == "jsonl":
        return lambda: read_json_blocks(path, latest)
    return lambda: read_csv(path, latest)


def count_lines(path: Path) -> int:
    """Fast line count (for the progress total)."""
    n = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            n += block.count(b"\n")
    return n


__all__ = ["prepare", "read_json_blocks", "read_json_lines", "read_csv", "file_reader", "csv_row_to_json"]

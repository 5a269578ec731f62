"""Untrusted JSON text, checked for what a JSON parser silently accepts or cannot survive: bytes that are not
UTF-8, nesting deep enough to exhaust a recursive parser, and keys given twice (a parser keeps the last one,
so `"patient_id"` given twice would file the event under the second patient).

The validator (pydantic-core) parses each line once, fast; these checks run where it cannot see the
problem: after a line failed (to say why in the words of the format) and, for duplicate keys, on the few
lines whose key count does not match the fields it read (`may_repeat_keys`). Each finding is a `Problem`
naming the line and the key, never an exception.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .problems import Problem

#: The deepest nesting an input may have: an event is an object whose fields are values, lists of values or
#: (a correction's `replacement`) an object of those: 3 levels. Deeper input is refused before it is parsed.
MAX_NESTING = 8
#: Event types whose validated model holds more keys than the line gave (a derived field) or nested objects:
#: their key count says nothing, so their lines are always checked for a repeated key.
_ALWAYS_CHECKED = frozenset({"gvhd_diagnosed", "event_corrected"})
_SPACED_KEY = re.compile(rb'"[ \t\r]+:').search  # a key followed by white space before its colon


class RepeatedKey(ValueError):
    """A key given twice in one JSON object."""

    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise RepeatedKey(key)
        out[key] = value
    return out


def nesting(text: bytes) -> int:
    """How deep objects and arrays nest in JSON text (brackets inside strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in text:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def load(raw: bytes, what: str = "(line)", line: int | None = None) -> Any | Problem:
    """JSON text as Python values, or the Problem that makes it unreadable: not UTF-8, nested deeper than
    `MAX_NESTING`, a key given twice in one object, not JSON."""
    short = raw[:80].decode("utf-8", errors="replace")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return Problem(what, short, f"is not valid UTF-8: byte 0x{raw[e.start]:02x} at column {e.start + 1} (save "
                                    "the file as UTF-8)", line)
    depth = nesting(raw)
    if depth > MAX_NESTING:
        return Problem(what, short, f"nests objects and lists {depth:,} levels deep; an event nests at most "
                                    f"{MAX_NESTING}", line)
    try:
        return json.loads(text, object_pairs_hook=_no_repeats)
    except RepeatedKey as e:
        return Problem(e.key, None, "is given twice in one object; give each field once", line)
    except ValueError as e:
        return Problem(what, short, f"is not valid JSON: {e}", line)


def may_repeat_keys(raw: bytes, event: Any) -> bool:
    """Whether a line that validated as `event` may give a key twice (then `load` tells). Every key is
    followed by a colon, so a line with as many colons as the event has fields set gives each key once (the
    usual line: one count). Else, a line whose keys are written `"key":` gives each once when it holds as
    many of them as fields set; a `":` inside a text value only makes the count larger (a needless check,
    never a missed one)."""
    fields = len(event.__pydantic_fields_set__)
    if event.type in _ALWAYS_CHECKED:
        return True
    colons = raw.count(b":")
    if colons == fields:  # each key is followed by a colon: as many keys as fields at most, so none twice
        return False
    keys = raw.count(b'":')
    if keys != fields:
        return True
    # every colon right after a quote: no key written with a space before its colon (the usual line, cheaply)
    return _SPACED_KEY(raw) is not None


def line_problem(raw: bytes, line: int | None) -> Problem | None:
    """Why a JSON line is unreadable as one event object (None: it reads as an object: the validator's own
    problems say what is wrong with it)."""
    found = load(raw, line=line)
    if isinstance(found, Problem):
        return found
    if not isinstance(found, dict):
        return Problem("(line)", raw[:80].decode("utf-8", errors="replace"),
                       "is not a JSON object (one event per line: {\"type\": …})", line)
    return None

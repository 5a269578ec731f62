"""What the engine reads and writes of events without their models (no pydantic): the envelope's field
names, the id derived from an event's content, and the problems an input is refused with. The store, the
projection loader and `timeline history` need only these; the models (`catalogue`, `envelope`) import them
from here."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from hashlib import sha1
from uuid import UUID

#: The envelope fields that identify an event: what it is, whose, when, which.
IDENTITY_FIELDS = ("type", "patient_id", "occurred_on", "event_id")
#: The envelope fields that say where a record came from (kept with the event's own fields).
PROVENANCE_FIELDS = ("source", "source_record_id", "recorded_by", "note")
#: Every envelope field, in the order `envelope.EventBase` declares them (checked there).
ENVELOPE_FIELDS = IDENTITY_FIELDS + PROVENANCE_FIELDS

#: Namespace of content-derived event ids (uuid5). Never change it: ids already stored depend on it.
EVENT_ID_NAMESPACE = UUID("6f1d3c2a-8b4e-5a7f-9c0d-2e4b6a8c1f35")
_NAMESPACE_BYTES = EVENT_ID_NAMESPACE.bytes


_INFUSION = b'{"type":"stem_cell_infusion",'
_GRAFT_SOURCE = re.compile(rb',"graft_source":"([a-z_]+)"')
_AFTER_DATE = re.compile(rb'"occurred_on":"[0-9]{4}-[0-9]{2}-[0-9]{2}"')


def id_content(content: bytes) -> bytes:
    """The bytes an id is derived from: the canonical JSON, in which a renamed field keeps its first name
    and place, so renaming a field never changes the ids of events already stored (a re-import of a
    re-exported file adds nothing). The one rename: the graft source of `stem_cell_infusion`, first named
    `source` in the envelope's place, now `graft_source` (when the event has no provenance `source`)."""
    if not content.startswith(_INFUSION) or b',"source":"' in content:
        return content
    found = _GRAFT_SOURCE.search(content)
    if found is None:
        return content
    content = content[:found.start()] + content[found.end():]
    date = _AFTER_DATE.search(content)
    return content[:date.end()] + b',"source":"' + found.group(1) + b'"' + content[date.end():]


def content_id_bytes(content: bytes) -> bytes:
    """uuid5(EVENT_ID_NAMESPACE, id_content(content)) as its 16 bytes (RFC 4122: SHA-1, version and variant
    bits), on bytes: the hot path of a bulk ingest."""
    if content.startswith(_INFUSION):  # the one type with a renamed field (tested here: the hot path)
        content = id_content(content)
    h = bytearray(sha1(_NAMESPACE_BYTES + content).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x50
    h[8] = (h[8] & 0x3F) | 0x80
    return bytes(h)



@dataclass(frozen=True)
class Problem:
    """One reason an input is refused: which field, what value, which rule, and where (the line or row of
    the input, when it came from a file)."""

    field: str
    value: object
    rule: str
    line: int | None = None

    def at(self, line: int | None) -> Problem:
        """The same problem, located at `line`."""
        return Problem(self.field, self.value, self.rule, line)

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        if self.value is None:  # nothing to show: a missing field, a key given twice
            return f"{where}{self.field}: {self.rule}"
        value = json.dumps(self.value, default=str, ensure_ascii=False)
        if len(value) > 120:
            value = value[:117] + "..."
        return f"{where}{self.field} = {value}: {self.rule}"


class RejectedError(Exception):
    """The input was refused as a whole; nothing from it was stored."""

    def __init__(self, problems: list[Problem], what: str = "input"):
        self.problems = problems
        self.what = what
        super().__init__(
            f"{what}: {len(problems)} problem(s), nothing stored\n" + "\n".join(f"  {p}" for p in problems[:50])
            + (f"\n  … and {len(problems) - 50} more" if len(problems) > 50 else "")
        )

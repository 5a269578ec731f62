"""What the engine writes for people and for spreadsheets, made safe in one place.

Stored text (a note, a regimen, a source record id) is whatever an input file said. Written out as it is,
it could drive the reader's terminal (escape sequences that clear the screen, retitle the window, or hide
lines) or, opened in a spreadsheet, run as a formula (`=cmd|' /C calc'!A0`). So:

- every text written to the terminal (stdout and stderr of the `timeline` command: tables, messages,
  history) has its control characters shown as `\\x1b`-style escapes (`TerminalText`, by `safe_terminal` around every command);
  JSON output escapes them as JSON does (`json_text`);
- every text cell of a CSV or spreadsheet file or stream that starts with `=`, `+`, `-`, `@`, a tab or a
  carriage return is prefixed with `'`, as OWASP advises for CSV injection (`cells`), and its control
  characters are escaped.

`raw=True` (the command line's `--raw`) turns both off, for machine use: cells exactly as stored.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # imported where used: a command that prints plain rows (`rows_text`) needs no polars
    import polars as pl

#: C0 and C1 control characters but tab and newline (a carriage return can hide a line: it is escaped too)
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_PATTERN = "[\x00-\x08\x0b-\x1f\x7f-\x9f]"
#: what a spreadsheet may read as the start of a formula (OWASP: CSV injection)
FORMULA_START = r"^[=+\-@\t\r]"


def escape_controls(text: str) -> str:
    """`text` with every control character (but tab and newline) shown as a `\\xNN` escape."""
    return CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def neutralise(text: str) -> str:
    """One cell for a spreadsheet: a leading `'` when it could start a formula; control characters escaped."""
    text = escape_controls(text)
    return "'" + text if re.match(FORMULA_START, text) else text


class TerminalText(io.TextIOBase):
    """A text stream that shows control characters as escapes before they reach the terminal. A write that
    starts with a carriage return (a progress line redrawing itself) keeps that one."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> int:
        head = "\r" if text.startswith("\r") else ""
        self.stream.write(head + escape_controls(text[len(head):]))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")


@contextlib.contextmanager
def safe_terminal(raw: bool = False) -> Iterator[None]:
    """While a command runs, its terminal output is safe: messages (stderr) always, results (stdout)
    unless `raw`. The streams are restored after."""
    saved = sys.stdout, sys.stderr
    sys.stderr = TerminalText(sys.stderr)
    if not raw:
        sys.stdout = TerminalText(sys.stdout)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def _text_columns(df: pl.DataFrame) -> list[str]:
    import polars as pl

    return [name for name, dtype in df.schema.items() if dtype == pl.String]


def _escaped(df: pl.DataFrame, name: str) -> pl.Expr:
    """Column `name` with its control characters escaped: one literal replacement per character present."""
    import polars as pl

    present = df.select(pl.col(name).str.extract_all(_CONTROL_PATTERN).explode().drop_nulls().unique())
    expr = pl.col(name)
    for ch in present.to_series().to_list():
        expr = expr.str.replace_all(ch, f"\\x{ord(ch):02x}", literal=True)
    return expr


def cells(df: pl.DataFrame, raw: bool = False) -> pl.DataFrame:
    """`df` for a CSV or spreadsheet: in every text column, control characters escaped and a cell that could
    start a formula prefixed with `'` (as `neutralise`, vectorised); as it is if `raw`."""
    if raw:
        return df
    import polars as pl

    exprs = []
    for name in _text_columns(df):
        col = _escaped(df, name)
        exprs.append(pl.when(col.str.contains(FORMULA_START)).then(pl.lit("'") + col).otherwise(col).alias(name))
    return df.with_columns(exprs) if exprs else df


def json_text(rows: list[dict[str, Any]]) -> str:
    """Rows as indented JSON; every control character escaped as JSON escapes it (C1 ones too)."""
    text = json.dumps(rows, default=str, indent=1, ensure_ascii=False)
    return CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"


_TABLE_WIDTH, _TEXT_LENGTH = 200, 60  # a terminal table's width, and the longest text it shows uncut


def table_text(df: pl.DataFrame) -> str:
    """A frame as the terminal table of every reading command (every row and column shown)."""
    import polars as pl

    with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=_TEXT_LENGTH, tbl_width_chars=_TABLE_WIDTH,
                   tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
        return str(df) + "\n"


def frame_text(df: pl.DataFrame, fmt: str, raw: bool = False) -> str:
    """A result as text: `table` (for the terminal), `csv` (cells neutralised unless `raw`) or `json`."""
    if fmt == "csv":
        return cells(df, raw).write_csv()
    if fmt == "json":
        return json_text(df.to_dicts())
    return table_text(df)


#: formats that only go to a file
FILE_ONLY = ("xlsx", "parquet")
#: a file's format from its extension, when the default (`table`) format is asked for
_EXTENSIONS = {".csv": "csv", ".json": "json", ".xlsx": "xlsx", ".parquet": "parquet"}


def write_frame(df: pl.DataFrame, fmt: str, out: str | Path | None = None, raw: bool = False,
                sheet: str = "Sheet1") -> Path | None:
    """A result to stdout, or to the file `out`: the one writer of every result, query output and export.

    `table` (the terminal's), `csv` and `json` go to stdout or a file; `xlsx` (a spreadsheet) and `parquet` to a
    file only. Into a file, the default `table` format becomes the one the extension names (else the table as
    text). CSV and spreadsheet cells are neutralised unless `raw`; spreadsheets and Parquet keep the column
    types (dates stay dates). Returns the file written, if any."""
    if out is None:
        if fmt in FILE_ONLY:
            raise ValueError(f"--format {fmt} writes a file: give --out FILE.{fmt}")
        sys.stdout.write(frame_text(df, fmt, raw))
        return None
    path = Path(out)
    if fmt == "table":
        fmt = _EXTENSIONS.get(path.suffix.lower(), "table")
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "xlsx":
        import polars as pl

        cells(df, raw).write_excel(path, worksheet=sheet[:31], autofit=True,
                                   dtype_formats={pl.Date: "yyyy-mm-dd", pl.Datetime: "yyyy-mm-dd hh:mm:ss"})
    elif fmt == "parquet":
        df.write_parquet(path)
    else:
        path.write_text(frame_text(df, fmt, raw), encoding="utf-8")
    return path


# -- plain rows, without polars ------------------------------------------------------------------------------
#: DuckDB column types whose values `rows_text` writes as polars writes them (the frame a query gives)
PLAIN_TYPES = frozenset({"boolean", "tinyint", "smallint", "integer", "bigint", "utinyint", "usmallint", "uinteger",
                         "ubigint", "varchar", "date"})


def _shown(value: Any) -> str | None:
    """A plain value as text, as polars shows it (None: null)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _fits(text: str) -> bool:
    """Text a table cell shows as it is: printable ASCII, no space at either end, not cut short."""
    return len(text) <= _TEXT_LENGTH and text.isascii() and text.isprintable() and text == text.strip()


def _table(names: list[str], rows: list[list[str | None]]) -> str | None:
    shown = [["null" if v is None else v for v in row] for row in rows]
    if not all(_fits(text) for row in [names, *shown] for text in row):
        return None
    widths = [max(len(text) for text in column) for column in zip(names, *shown, strict=True)]
    if sum(widths) + 3 * len(widths) + 1 > _TABLE_WIDTH:
        return None

    def rule(left: str, fill: str, cross: str, right: str) -> str:
        return left + cross.join(fill * (w + 2) for w in widths) + right

    def line(texts: list[str]) -> str:
        return "│ " + " ┆ ".join(t.ljust(w) for t, w in zip(texts, widths, strict=True)) + " │"

    return "\n".join([rule("┌", "─", "┬", "┐"), line(names), rule("╞", "═", "╪", "╡"), *map(line, shown),
                      rule("└", "─", "┴", "┘")]) + "\n"


def _csv_field(text: str | None) -> str:
    """A CSV field as polars writes it: empty for null; quoted when empty or holding a comma, quote or line
    break."""
    if text is None:
        return ""
    if text == "" or any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv(names: list[str], types: list[str], rows: list[list[str | None]], raw: bool) -> str | None:
    if any(_csv_field(name) != name or not name for name in names):
        return None
    text = [i for i, t in enumerate(types) if t == "varchar" and not raw]
    lines = [",".join(names)]
    for row in rows:
        for i in text:
            if row[i] is not None:
                row[i] = neutralise(row[i])
        lines.append(",".join(map(_csv_field, row)))
    return "\n".join(lines) + "\n"


def rows_text(names: list[str], types: list[str], rows: list[tuple], fmt: str, raw: bool = False) -> str | None:
    """A query's result as `frame_text` writes its polars frame, from DuckDB's rows (`types`: DuckDB's type ids),
    without polars; None for a result it cannot write exactly so (other types than `PLAIN_TYPES`, repeated
    column names, a table too wide or with text polars would cut or align otherwise): then `frame_text`."""
    if not names or len(set(names)) < len(names) or not PLAIN_TYPES.issuperset(types):
        return None
    if fmt == "json":
        return json_text([dict(zip(names, row, strict=True)) for row in rows])
    shown = [[_shown(v) for v in row] for row in rows]
    return _csv(names, types, shown, raw) if fmt == "csv" else _table(names, shown)

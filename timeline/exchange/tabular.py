"""Writing a table to a file: the one place every export and `--out FILE` of a query goes through (CSV, JSON,
spreadsheet, Parquet), so a rule for output files (e.g. neutralising spreadsheet formulas in text cells) is
added once, here. Dates stay dates: Parquet and spreadsheets keep the column types."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

FILE_FORMATS = ("csv", "json", "xlsx", "parquet")


def format_of(path: Path, given: str | None = None) -> str:
    """The format named, or the one of the file's extension."""
    if given:
        return given
    suffix = path.suffix.lower().lstrip(".")
    if suffix in FILE_FORMATS:
        return suffix
    raise ValueError(f"{path}: say the format (--format {'|'.join(FILE_FORMATS)}) or use one of these extensions")


def write_frame(df: pl.DataFrame, path: Path, fmt: str, sheet: str = "result") -> Path:
    """Write `df` to `path` as `fmt` (csv, json, xlsx or parquet)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        df.write_csv(path)
    elif fmt == "json":
        path.write_text(json.dumps(df.to_dicts(), default=str, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    elif fmt == "xlsx":
        df.write_excel(path, worksheet=sheet[:31], autofit=True,
                       dtype_formats={pl.Date: "yyyy-mm-dd", pl.Datetime: "yyyy-mm-dd hh:mm:ss"})
    elif fmt == "parquet":
        df.write_parquet(path)
    else:
        raise ValueError(f"unknown file format {fmt!r}; one of {', '.join(FILE_FORMATS)}")
    return path

"""How every command ends: one map from error to exit status.

    0  done
    1  bad input or refused statement: a file or event refused, an unknown name (parameter, endpoint,
       column, patient), a statement that would write, no store or no projections where one is needed,
       an SQL error, an open data query of severity error (`timeline check`)
    2  usage: the command given wrongly (unknown option, a malformed date, timestamp or NAME=VALUE)
  130  interrupted (nothing partial is stored)
"""

from __future__ import annotations

import argparse
from datetime import date, datetime

DONE, BAD_INPUT, USAGE, INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A command given wrongly (exit status 2)."""


def exit_status(exc: BaseException) -> int | None:
    """The exit status of an error a command may end with; None for a defect (a traceback is shown)."""
    import duckdb

    if isinstance(exc, UsageError):
        return USAGE
    if isinstance(exc, (ValueError, LookupError, OSError, PermissionError, duckdb.Error)):
        return BAD_INPUT
    from ..events.problems import RejectedError

    if isinstance(exc, RejectedError):
        return BAD_INPUT
    return None


def clinical_date(text: str) -> date:
    """argparse type: a clinical date `YYYY-MM-DD`."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def moment(text: str) -> datetime:
    """argparse type: a knowledge time, ISO 8601 (UTC when no zone is given)."""
    from ..clock import as_utc

    try:
        return as_utc(text)  # type: ignore[return-value]
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def name_value(text: str) -> tuple[str, str]:
    """argparse type: NAME=VALUE."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"takes NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()

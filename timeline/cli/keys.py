"""Encryption at rest from the command line: `timeline key new`, `timeline key rotate`, `timeline forget`, and
the `--key-file` option (see `timeline/store/encryption.py`)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..settings import CIPHER_KEY_ENV, KEY_FILE_ENV
from .errors import DONE, UsageError

KEY_FILE_HELP = (f"the file holding the store's master key (default ${KEY_FILE_ENV}; or the key itself in "
                 f"${CIPHER_KEY_ENV}); keep it outside the data folder")


@contextlib.contextmanager
def key_file(args: argparse.Namespace) -> Iterator[None]:
    """`--key-file` given: it names the key for this command, as $TIMELINE_KEY_FILE would (the environment as it
    was afterwards)."""
    if not getattr(args, "key_file", None):
        yield
        return
    saved = {k: os.environ.get(k) for k in (KEY_FILE_ENV, CIPHER_KEY_ENV)}
    os.environ[KEY_FILE_ENV] = str(args.key_file)
    os.environ.pop(CIPHER_KEY_ENV, None)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def write_key(path: Path, key: str) -> None:
    """A new key file, readable by its owner only; an existing file is never overwritten (it may be the only
    copy of a store's key)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{path} exists: a key file is never overwritten (it may be the only copy of a store's "
                         "key); name a new file") from None
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")


def cmd_key_new(args: argparse.Namespace) -> int:
    from ..store.encryption import new_key

    key = new_key()
    if args.file is None:
        print(key)
        print(f"a new master key (base64): set ${CIPHER_KEY_ENV} to it, or keep it in a file (--file) named by "
              f"--key-file or ${KEY_FILE_ENV}; a store made with it can never be read without it", file=sys.stderr)
        return DONE
    write_key(Path(args.file), key)
    print(f"wrote a new master key to {args.file} (readable by you only); name it with --key-file or "
          f"${KEY_FILE_ENV}, keep a copy in a safe place: a store made with it can never be read without it",
          file=sys.stderr)
    return DONE


def cmd_key_rotate(args: argparse.Namespace) -> int:
    from ..app import Timeline
    from ..store.encryption import new_key
    from ..erasure import rotate

    target = Path(args.new_key_file)
    if target.exists():
        raise UsageError(f"{target} exists: `key rotate` writes the new key to a new file")
    with Timeline.open(args.store, create=False) as tl:
        key = new_key()
        write_key(target, key)
        try:
            done = rotate(tl, key, args.by)
        except BaseException:
            target.unlink(missing_ok=True)  # the store still opens with the old key only
            raise
    print(f"the store's {done:,} data key(s) are now wrapped by the new key in {target}; the old key no longer opens "
          "it: use the new file from now on", file=sys.stderr)
    return DONE


def cmd_forget(args: argparse.Namespace) -> int:
    from ..app import Timeline
    from ..erasure import forget

    if not args.confirm:
        raise UsageError("forgetting a patient cannot be undone: their events can never be read again; add --confirm")
    with Timeline.open(args.store, create=False) as tl:
        done = forget(tl, args.patient_id, args.by, args.reason)
    print(f"forgot {args.patient_id}: {done.events:,} stored event(s) can never be read again; the audit trail records "
          f"it under the pseudonym {done.pseudonym}", file=sys.stderr)
    return DONE


def register(sub: Any, store_arg) -> None:
    p = sub.add_parser("key", help="master keys of encrypted stores: make a new one, or rotate a store's",
                       description="A store made while a master key is given ($TIMELINE_CIPHER_KEY, or a key file "
                       "named by --key-file or $TIMELINE_KEY_FILE) is encrypted: every event sealed with its patient's "
                       "own key (AES-256-GCM), patient ids pseudonymised. See the README, 'Encryption at rest'.")
    ks = p.add_subparsers(dest="key_command", required=True, metavar="ACTION")
    n = ks.add_parser("new", help="print a new master key, or write it to a new file (readable by you only)")
    n.add_argument("--file", metavar="PATH", help="write the key to this new file instead of printing it")
    n.set_defaults(func=cmd_key_new)
    r = ks.add_parser("rotate", help="wrap the store's data keys with a new master key, written to a new file",
                      description="Replace an encrypted store's master key: the patients' data keys are wrapped again "
                      "by a new key, written to NEW_KEY_FILE; the old key no longer opens the store. Recorded in the "
                      "audit trail.")
    r.add_argument("new_key_file", metavar="NEW_KEY_FILE")
    r.add_argument("--by", help="who changes the key (default: the user running the command)")
    store_arg(r)
    r.set_defaults(func=cmd_key_rotate)

    p = sub.add_parser("forget", help="erase a patient from an encrypted store by destroying their data key",
                       description="Destroy the data key of one patient of an encrypted store: their events stay in "
                       "the log but can never be read again, and every result is computed without them. It cannot be "
                       "undone; the audit trail records it (when, by whom, why) under the patient's pseudonym.")
    p.add_argument("patient_id", metavar="PATIENT")
    p.add_argument("--confirm", action="store_true", help="required: the erasure cannot be undone")
    p.add_argument("--by", help="who erases (default: the user running the command)")
    p.add_argument("--reason", help="why (kept in the audit trail)")
    store_arg(p)
    p.set_defaults(func=cmd_forget)

"""Encryption at rest: each patient's events sealed with that patient's own key, patient ids pseudonymised.

Envelope encryption, as NIST SP 800-57 describes a key hierarchy, and erasure by destroying keys
("crypto-shredding", one way to meet the GDPR's right to erasure, art. 17, in an append-only log):

- the **master key** (AES-256, made by `timeline key new`) never enters the store: it comes from
  `$TIMELINE_CIPHER_KEY` (base64) or a key file outside the data folder (`$TIMELINE_KEY_FILE`, `--key-file`).
  It wraps the keys below and seals a check value, so a wrong key is told apart from damage;
- one **data key per patient** (random AES-256) seals each of that patient's stored events (the event's
  whole JSON state) and that patient's id, with the eventsourcing library's AES-GCM cipher
  (`eventsourcing.cryptography.AESCipher`: 12-byte nonce, 16-byte tag, ciphertext; authenticated, so a
  changed byte is found, never read as data). The patient's key row holds the data key wrapped by the master
  key: destroying that row (`timeline forget`) leaves the events in the log, unreadable for ever;
- a **pseudonym key** (random, wrapped by the master key): a patient's stream is named by a keyed hash of the
  patient id (HMAC-SHA-256), so the store's tables hold no patient id, and the same patient always finds the
  same stream; source record ids (a laboratory's accession number, say) are kept as keyed hashes too.

What stays readable without the key: the event type of each stored event (the library's topic: the type
and nothing more), its position and version in its stream, how many events a pseudonymous stream holds,
event ids (random, or hashes of content) and content digests in the index tables, the audit trail's
entries (locks, forgets) and the time of each append.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..settings import CIPHER_KEY_ENV, KEY_FILE_ENV

KEY_BYTES = 32  # AES-256
CHECK = b"timeline store key check"
NONCE, TAG = 12, 16  # the library cipher's layout: nonce, tag, ciphertext


class KeyProblem(PermissionError):
    """The store's key is missing, wrong or unusable: one line that shows nothing of the data."""


def new_key() -> str:
    """A new master key: 32 random bytes in base64, by the library's cipher."""
    from eventsourcing.cryptography import AESCipher

    return AESCipher.create_key(KEY_BYTES)


def _decode(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip().encode(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise KeyProblem(f"{where} holds no key made by `timeline key new` (base64 of {KEY_BYTES} bytes)")
    return key


def master_key(data_dir: Path | None) -> bytes | None:
    """The master key named by the environment (`$TIMELINE_CIPHER_KEY`, else the file `$TIMELINE_KEY_FILE`), or
    None. A key file inside the data folder is refused: a copy of the folder would carry its own key."""
    text = os.environ.get(CIPHER_KEY_ENV)
    if text:
        return _decode(text, f"${CIPHER_KEY_ENV}")
    name = os.environ.get(KEY_FILE_ENV)
    if not name:
        return None
    path = Path(name).expanduser()
    if data_dir is not None and path.resolve().is_relative_to(Path(data_dir).resolve()):
        raise KeyProblem(f"the key file {path} is inside the data folder {data_dir}: keep it elsewhere (a copy or "
                         "backup of the folder would carry its own key)")
    try:
        return _decode(path.read_text(), f"the key file {path}")
    except (OSError, UnicodeDecodeError) as e:
        raise KeyProblem(f"cannot read the key file {path} ({getattr(e, 'strerror', None) or type(e).__name__})") \
            from None


class PatientCipher:
    """AES-GCM in the stored layout of the library's cipher (`eventsourcing.cryptography.AESCipher`: nonce, tag,
    ciphertext), keeping its AEAD object: one per patient's data key, reused for each of that patient's events.
    Not a subclass of the library's: `cryptography` is imported when a key is first used, so a store that holds
    plain events never loads it."""

    def __init__(self, key: bytes):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(key)

    def encrypt(self, plaintext: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        sealed = self._aead.encrypt(nonce, plaintext, None)
        return nonce + sealed[-TAG:] + sealed[:-TAG]

    def decrypt(self, ciphertext: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag

        try:
            return self._aead.decrypt(ciphertext[:NONCE], ciphertext[NONCE + TAG:] + ciphertext[NONCE:NONCE + TAG],
                                      None)
        except (InvalidTag, ValueError):
            raise ValueError("damaged or foreign cipher text") from None


def seal_rows(rows: list[tuple[str, int, str, bytes]], streams: dict[str, str],
              ciphers: dict[str, PatientCipher]) -> list[tuple[str, int, str, bytes]]:
    """Stream rows (patient, version, type, state) as stored: each patient's stream id, the state sealed by
    the patient's cipher, in the library's layout. The nonces (random, 96 bits each, as NIST SP 800-38D
    allows) come from one call to the system's generator per batch, not one per event."""
    encrypt = {pid: ciphers[sid]._aead.encrypt for pid, sid in streams.items()}
    nonces = os.urandom(NONCE * len(rows))
    out = []
    append = out.append
    for i, (pid, version, kind, state) in enumerate(rows):
        nonce = nonces[NONCE * i:NONCE * (i + 1)]
        sealed = encrypt[pid](nonce, state, None)
        append((streams[pid], version, kind, nonce + sealed[-TAG:] + sealed[:-TAG]))
    return out


@dataclass
class NewPatientKey:
    """The key row of a patient seen for the first time: stored in the same transaction as their events."""

    stream_id: str
    wrapped: bytes  # the data key, sealed by the master key
    identity: bytes  # the patient id, sealed by the data key
    cipher: PatientCipher  # the data key's cipher (kept by the transaction until it commits)


@dataclass
class KeyRing:
    """The keys of an encrypted store, as far as they are known to this process: the master cipher, the
    pseudonym key, and the data key of each stream read or written so far (None: forgotten)."""

    master: PatientCipher
    pseudonym_key: bytes
    ciphers: dict[str, PatientCipher | None] = field(default_factory=dict)
    identities: dict[str, str] = field(default_factory=dict)  # stream id -> patient id

    @classmethod
    def open(cls, key: bytes, check: str, wrapped_pseudonym_key: str, where: str) -> KeyRing:
        """The ring of a store whose meta rows are `check` and `wrapped_pseudonym_key` (base64)."""
        master = PatientCipher(key)
        try:
            master.decrypt(base64.b64decode(check))
        except ValueError:
            raise KeyProblem(f"{where} is encrypted with another key than the one given ($TIMELINE_CIPHER_KEY or "
                             "the key file): nothing was read") from None
        return cls(master, master.decrypt(base64.b64decode(wrapped_pseudonym_key)))

    @staticmethod
    def create(key: bytes) -> tuple[str, str]:
        """The meta rows of a new encrypted store: (key check, wrapped pseudonym key), base64."""
        master = PatientCipher(key)
        return (base64.b64encode(master.encrypt(CHECK)).decode(),
                base64.b64encode(master.encrypt(os.urandom(KEY_BYTES))).decode())

    # -- names -------------------------------------------------------------------------------------------
    def stream_id(self, patient_id: str) -> str:
        """The pseudonym naming a patient's stream: a keyed hash (128 bits of HMAC-SHA-256)."""
        return "p" + hmac.new(self.pseudonym_key, patient_id.encode(), hashlib.sha256).hexdigest()[:32]

    def hidden(self, text: str) -> str:
        """A source record id as stored: its keyed hash (equal ids stay equal)."""
        return "s" + hmac.new(self.pseudonym_key, b"source record\x00" + text.encode(), hashlib.sha256).hexdigest()[:32]

    def patient_of(self, stream_id: str) -> str:
        """The patient id of a stream whose key row was read (the pseudonym itself when forgotten or unknown)."""
        return self.identities.get(stream_id, stream_id)

    # -- keys ----------------------------------------------------------------------------------------------
    def learn(self, stream_id: str, wrapped: bytes | None, identity: bytes | None) -> PatientCipher | None:
        """Take in a stored key row (wrapped None: the patient was forgotten); its cipher."""
        if wrapped is None:
            self.ciphers[stream_id] = None
            self.identities.pop(stream_id, None)
            return None
        try:
            cipher = PatientCipher(self.master.decrypt(bytes(wrapped)))
            self.identities[stream_id] = cipher.decrypt(bytes(identity or b"")).decode()
        except ValueError:
            raise KeyProblem(f"the key of stream {stream_id} cannot be unwrapped with the master key given: the "
                             "store is damaged or was written with two keys; nothing was read") from None
        self.ciphers[stream_id] = cipher
        return cipher

    def reset(self) -> None:
        """Forget what was learnt (before reading every key row again)."""
        self.ciphers.clear()
        self.identities.clear()

    def new_patient(self, patient_id: str) -> NewPatientKey:
        """A new data key for a patient (learnt by the ring only once read back from the store, committed)."""
        key = os.urandom(KEY_BYTES)
        cipher = PatientCipher(key)
        return NewPatientKey(self.stream_id(patient_id), self.master.encrypt(key), cipher.encrypt(patient_id.encode()),
                             cipher)

    def forget(self, stream_id: str) -> None:
        self.ciphers[stream_id] = None
        self.identities.pop(stream_id, None)

    # -- opening -------------------------------------------------------------------------------------------

    def unseal(self, stream_id: str, state: bytes) -> bytes | None:
        """The plain state of a stored event (None: its patient was forgotten, it can never be read)."""
        cipher = self.ciphers.get(stream_id)
        if cipher is None:
            if stream_id in self.ciphers:
                return None
            raise KeyProblem(f"no key row for stream {stream_id}: the store is damaged; nothing was read")
        try:
            return cipher.decrypt(state)
        except ValueError:
            raise KeyProblem(f"an event of stream {stream_id} fails its authentication: the store is damaged or "
                             "was changed outside the tool") from None

    def unseal_many(self, stream_ids: list[str], states: list[bytes]) -> list[bytes | None]:
        """`unseal` of many rows (None for a forgotten patient's): split here, opened by `unseal_split`."""
        starts = [i for i in range(len(stream_ids)) if i == 0 or stream_ids[i] != stream_ids[i - 1]]
        return self.unseal_split([stream_ids[i] for i in starts], starts, [st[:NONCE] for st in states],
                                 [st[NONCE + TAG:] + st[NONCE:NONCE + TAG] for st in states])

    def unseal_split(self, run_streams: list[str], run_starts: list[int], nonces: list[bytes],
                     sealed: list[bytes]) -> list[bytes | None]:
        """Rows given as runs of one stream (its id, the index of its first row), already split into nonce and
        ciphertext-with-tag (a bulk read splits them in Arrow): per run, the AEAD is mapped over the rows from C."""
        out: list[bytes | None] = []
        ends = [*run_starts[1:], len(nonces)]
        for sid, a, b in zip(run_streams, run_starts, ends, strict=True):
            cipher = self.ciphers.get(sid)
            if cipher is None:
                if sid not in self.ciphers:
                    raise KeyProblem(f"no key row for stream {sid}: the store is damaged; nothing was read")
                out.extend([None] * (b - a))
                continue
            one = len(run_streams) == 1
            try:
                out.extend(map(cipher._aead.decrypt, nonces if one else nonces[a:b], sealed if one else sealed[a:b],
                               itertools.repeat(None)))
            except Exception:  # noqa: BLE001 - InvalidTag: a changed byte, reported as damage
                raise KeyProblem(f"an event of stream {sid} fails its authentication: the store is damaged or was "
                                 "changed outside the tool") from None
        return out

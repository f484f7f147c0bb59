"""Trust anchors outside the database: the pinned verifier keys.

The database's ``audit_signing_keys`` table says which keys signed the log, but anyone who can
write that table (the service's own role, before ``clearance db grant``) can add a key of their
own and append entries that verify against it. Verification therefore trusts only keys pinned
in a file the database's operators cannot rewrite: ``CLEARANCE_TRUSTED_KEYS``.

The file (written by ``clearance keys init|rotate`` beside the private key, as
``<key file>.trusted``; keep a copy where the verifier runs)::

    # comments and blank lines are ignored
    <name>+<hex key ID>+<base64(0x01 ‖ 32-byte Ed25519 public key)>

one C2SP signed-note verifier key per line (:mod:`audit.tlog.note`). The name is the log's
origin, so the same line verifies the v2 log's checkpoints; rotation appends a line and never
removes one, so entries signed by a retired key still verify.

:func:`load_trusted_keys` reads it (errors name the file and line); :func:`check_keyring`
compares it with the database's keyring and names the keys known only to the database;
:func:`pinned_keyring` turns it into the :class:`~audit.keys.Keyring` the v1 verifier takes.

Every v2 verification function takes the trusted verifier keys as an explicit parameter (a
sequence of :class:`audit.tlog.note.Verifier`); the service and the CLI pass the pinned ones
(``api.pinned``) and never the database's keyring. A checkpoint is signed with the service's
Ed25519 key under the log's origin as the C2SP key name (:func:`log_signer`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from cryptography.hazmat.primitives import serialization

from ._fastsig import SodiumSigner
from ._files import atomic_write
from .errors import AuditError
from .keys import Keyring, PublicKey, SigningKey
from .tlog.errors import TlogFormatError
from .tlog.note import Ed25519Signer, Ed25519Verifier

ENV_VAR = "CLEARANCE_TRUSTED_KEYS"
SUFFIX = ".trusted"
HEADER = (
    "# Clearance: pinned audit-log verifier keys (C2SP signed-note, one per line).\n"
    "# Verification trusts only these keys. Keep a copy where the database's operators cannot\n"
    "# write it and point CLEARANCE_TRUSTED_KEYS at it. Rotation appends; never remove a line.\n"
)

__all__ = [
    "ENV_VAR",
    "TrustReport",
    "TrustedKeysError",
    "check_keyring",
    "first_signed_seqs",
    "load_trusted_keys",
    "pin_key",
    "pin_note",
    "keyring_from_verifier_keys",
    "log_signer",
    "log_verifier",
    "pinned_keyring",
    "require_pinned",
    "trusted_keys_path_for",
    "trusted_verifiers",
    "verifier_for",
    "write_trusted_keys",
]


class TrustedKeysError(AuditError):
    """The pinned key file is missing, unreadable or malformed (``path``, ``line`` if known)."""

    def __init__(self, path: str | os.PathLike[str], reason: str, *, line: int | None = None) -> None:
        self.path, self.line, self.reason = str(path), line, reason
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"pinned keys {where}: {reason}")


def trusted_keys_path_for(key_file: str | os.PathLike[str]) -> Path:
    """Where ``keys init|rotate`` write the pinned keys of the key at ``key_file``."""
    path = Path(key_file)
    return path.with_name(path.name + SUFFIX)


def verifier_for(key: PublicKey | bytes, origin: str) -> Ed25519Verifier:
    """The verifier key of a signing key, named for the log's ``origin``."""
    raw = key.raw if isinstance(key, PublicKey) else key
    return Ed25519Verifier(origin, raw)


def log_verifier(key: PublicKey, origin: str) -> Ed25519Verifier:
    """The C2SP verifier of checkpoints of the log ``origin`` signed with ``key``."""
    return verifier_for(key, origin)


def log_signer(key: SigningKey, origin: str) -> Ed25519Signer:
    """The C2SP signer of checkpoints of the log ``origin`` with ``key`` (signing by libsodium:
    ``audit._fastsig``)."""
    seed = key.private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                     serialization.NoEncryption())
    return SodiumSigner(origin, seed)


def trusted_verifiers(keys: Iterable[PublicKey], origin: str) -> tuple[Ed25519Verifier, ...]:
    """The verifiers of ``keys`` (public keys kept outside the database: a PEM or keyring file
    given on the command line) under the log's ``origin``."""
    return tuple(verifier_for(key, origin) for key in keys)


def load_trusted_keys(path: str | os.PathLike[str]) -> list[Ed25519Verifier]:
    """The verifier keys pinned in ``path``, in file order.

    Raises :class:`TrustedKeysError` when the file is missing or unreadable, when a line is not
    an Ed25519 verifier key (naming the line), when a key is listed twice, or when it lists none.
    """
    source = Path(path)
    try:
        content = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TrustedKeysError(source, "no such file (create it with `clearance keys init`, or set "
                                       f"{ENV_VAR} to the file you keep)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TrustedKeysError(source, f"cannot read it ({exc})") from None
    verifiers: list[Ed25519Verifier] = []
    seen: dict[tuple[str, bytes], int] = {}
    for number, line in enumerate(content.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            verifier = Ed25519Verifier.from_key(stripped)
        except TlogFormatError as exc:
            raise TrustedKeysError(source, exc.reason, line=number) from None
        # The (name, key ID) pair is how a signature line picks its key: two entries for one
        # pair are either a copy or a collision, and neither belongs in a trust anchor.
        ident = (verifier.name, verifier.key_id)
        if ident in seen:
            raise TrustedKeysError(source, f"key {verifier.name}+{verifier.key_id.hex()} is already "
                                           f"listed on line {seen[ident]}", line=number)
        seen[ident] = number
        verifiers.append(verifier)
    if not verifiers:
        raise TrustedKeysError(source, "lists no keys")
    return verifiers


def write_trusted_keys(path: str | os.PathLike[str], verifiers: Iterable[Ed25519Verifier], *,
                       header: str = HEADER) -> Path:
    """Write ``verifiers`` (one line each, after ``header``) atomically: a temporary file,
    fsync, rename, fsync of the directory. A crash leaves the old file or the new, never half."""
    lines = [header] + [f"{v.verifier_key}\n" for v in verifiers]
    return atomic_write(Path(path), "".join(lines))


def pin_key(path: str | os.PathLike[str], verifier: Ed25519Verifier, *, note: str | None = None) -> bool:
    """Append ``verifier`` to the pinned keys at ``path`` (created with a header if absent).

    Existing lines are kept byte for byte; returns False when the key was already pinned.
    ``note`` becomes a comment line above the key (e.g. its key id and date).
    """
    target = Path(path)
    existing = ""
    if target.exists():
        load_trusted_keys(target)  # refuse to extend a file that does not parse
        existing = target.read_text(encoding="utf-8")
        if any(line.strip() == verifier.verifier_key for line in existing.splitlines()):
            return False
        if existing and not existing.endswith("\n"):
            existing += "\n"
    else:
        existing = HEADER
    comment = f"# {note}\n" if note else ""
    atomic_write(target, existing + comment + verifier.verifier_key + "\n")
    return True


def pin_note(key: PublicKey, what: str) -> str:
    """The comment written above a pinned key: the key id, what happened and when."""
    return f"key {key.key_id} {what} {datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"


def require_pinned(key: PublicKey, pinned: Sequence[Ed25519Verifier], *, source: str | None) -> None:
    """Raise :class:`TrustedKeysError` unless ``key`` is among ``pinned``: a service must not
    sign entries that verification with the pinned keys would refuse."""
    if not any(v.public_key == key.raw for v in pinned):
        raise TrustedKeysError(source or ENV_VAR, f"the signing key {key.key_id} is not pinned; add its "
                                                  "line (clearance keys register prints it) and start again")


def pinned_keyring(verifiers: Iterable[Ed25519Verifier], *, origin: str | None = None) -> Keyring:
    """The v1 keyring (key id → public key) of the pinned keys, for ``verify_database`` and
    ``verify_pack``; with ``origin``, only keys named for that log."""
    return Keyring(PublicKey.from_raw(v.public_key) for v in verifiers if origin is None or v.name == origin)


def keyring_from_verifier_keys(keys: Iterable[str]) -> Keyring:
    """:func:`pinned_keyring` of verifier key strings (what crosses into a worker process)."""
    try:
        return pinned_keyring(Ed25519Verifier.from_key(k) for k in keys)
    except TlogFormatError as exc:
        raise TrustedKeysError(ENV_VAR, exc.reason) from None


@dataclass(frozen=True)
class TrustReport:
    """How the database's keyring compares with the pinned keys.

    ``database_only``: registered in the database, not pinned — an error: the database could
    have been given it by anyone with its role. ``first_seq`` maps their key ids to the first seq
    each signed (absent: signed nothing yet). ``rejected``: rows whose public key is not the one
    their id names. ``pinned_only``: pinned, not (yet) registered — informational.
    """

    database_only: tuple[PublicKey, ...]
    pinned_only: tuple[Ed25519Verifier, ...]
    rejected: Mapping[str, str] = field(default_factory=dict)
    first_seq: Mapping[str, int] = field(default_factory=dict)

    @property
    def trusted(self) -> bool:
        return not self.database_only and not self.rejected

    def problems(self) -> list[str]:
        """One sentence per key the verifier must not trust."""
        out = []
        for key in self.database_only:
            seq = self.first_seq.get(key.key_id)
            where = f"; it signs from seq {seq}" if seq is not None else "; it has signed nothing yet"
            out.append(f"signing key {key.key_id} is in the database but not pinned in {ENV_VAR}{where}")
        for key_id, why in self.rejected.items():
            out.append(f"signing key row {key_id} is refused: {why}")
        return out


def check_keyring(keyring: Keyring, pinned: Sequence[Ed25519Verifier], *,
                  first_seq: Callable[[Sequence[str]], Mapping[str, int]] | None = None) -> TrustReport:
    """Compare the database's ``keyring`` with the ``pinned`` keys (by public key, whatever
    their names). ``first_seq`` (e.g. ``lambda ids: first_signed_seqs(engine, ids)``) says
    where each database-only key first signed."""
    raw_pinned = {v.public_key for v in pinned}
    raw_db = {key.raw for key in keyring.values()}
    database_only = tuple(key for key in keyring.values() if key.raw not in raw_pinned)
    pinned_only = tuple(v for v in pinned if v.public_key not in raw_db)
    seqs = dict(first_seq([k.key_id for k in database_only])) if first_seq and database_only else {}
    return TrustReport(database_only, pinned_only, dict(keyring.rejected), seqs)


# The v1 trail: entries and checkpoints carry the key id that signed them; v2 leaves carry the
# key id of the writer that appended them (its key signed the checkpoint of that batch). The
# seqs of the two logs are separate numberings: the v1 one is reported only when no v2 leaf
# names the key.
_FIRST_SEQS_SQL = text(
    "SELECT key_id, min(seq) FILTER (WHERE log = 2), min(seq) FILTER (WHERE log = 1) FROM ("
    " SELECT key_id, seq, 2 AS log FROM audit_log WHERE key_id = ANY(:ids)"
    " UNION ALL SELECT key_id, seq, 1 FROM audit_entries WHERE key_id = ANY(:ids)"
    " UNION ALL SELECT key_id, seq, 1 FROM audit_checkpoints WHERE key_id = ANY(:ids)"
    ") signed GROUP BY key_id"
)


def first_signed_seqs(engine: Engine, key_ids: Sequence[str]) -> dict[str, int]:
    """For each of ``key_ids``, the first seq of a v2 leaf appended under it, else of a v1
    entry or checkpoint it signed."""
    if not key_ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(_FIRST_SEQS_SQL, {"ids": list(key_ids)})
        return {str(k): int(v2 if v2 is not None else v1) for k, v2, v1 in rows}

"""The pinned verifier keys, resolved once from the settings for every caller.

The CLI (``audit verify``, ``keys check``), the service (start-up check, ``GET
/v1/audit/verify``) and the v2 verifier take the keys they trust from :func:`pinned_verifiers`
alone, so "which keys are trusted" has one answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.settings import Settings
from audit.keys import PublicKey
from audit.tlog.note import Ed25519Verifier
from audit.trust import TrustedKeysError, load_trusted_keys, verifier_for


@dataclass(frozen=True)
class PinnedKeys:
    """The pinned verifiers and where they came from. ``verifiers`` is empty only when no
    file is configured and none exists beside the key file: then nothing outside the database
    vouches for the keys, and the service says so at start-up."""

    verifiers: tuple[Ed25519Verifier, ...]
    source: str | None
    origin: str
    # Nothing pinned: the service trusts its own signing key alone (never the database's keys).
    own_key_only: bool = False

    @property
    def configured(self) -> bool:
        return bool(self.verifiers)

    def keys(self) -> list[str]:
        """The verifier key strings (plain data: they cross into verification processes)."""
        return [v.verifier_key for v in self.verifiers]


def pinned_verifiers(settings: Settings) -> PinnedKeys:
    """The keys in ``CLEARANCE_TRUSTED_KEYS`` (which must then exist and parse), else in
    ``<key file>.trusted`` when that exists, else none. Raises ``TrustedKeysError``."""
    path = settings.trusted_keys_path()
    if settings.trusted_keys is None and not path.exists():
        return PinnedKeys((), None, settings.log_origin)
    return PinnedKeys(tuple(load_trusted_keys(path)), str(path), settings.log_origin)


def pinned_or_own(settings: Settings, own: PublicKey | None) -> PinnedKeys:
    """What the service and the CLI trust: the pinned keys; with none pinned, only the public
    key of the signing key they hold (a file outside the database too), never the database's
    keyring. Raises ``TrustedKeysError`` when there is neither."""
    pinned = pinned_verifiers(settings)
    if pinned.configured:
        return pinned
    if own is None:
        raise TrustedKeysError(settings.trusted_keys_path(), "no pinned keys and no signing key: set "
                                                             "CLEARANCE_TRUSTED_KEYS (or pass --trusted-keys)")
    return PinnedKeys((verifier_for(own, settings.log_origin),), "the service's signing key", settings.log_origin,
                      own_key_only=True)

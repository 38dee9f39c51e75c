"""The keyed hash that identifies a person in every service without storing who they are.

All four services hash the same normalised email with the same secret key, so a request that
names an email finds the person everywhere, while logs, indexes and tombstones hold only the
hash. HMAC (not a plain hash) so that nobody without the key can test a guessed email.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata


def normalise_email(email: str) -> str:
    """The form two spellings of one mailbox share: NFKC, trimmed, case-folded."""
    return unicodedata.normalize("NFKC", email).strip().casefold()


class SubjectHasher:
    """Turns an email into the subject id used as key everywhere (hex HMAC-SHA256)."""

    def __init__(self, key: str) -> None:
        if not key:
            raise ValueError("the identity hash key must not be empty")
        self._key = key.encode()

    def __call__(self, email: str) -> str:
        digest = hmac.new(self._key, normalise_email(email).encode(), hashlib.sha256)
        return digest.hexdigest()

"""The keyed hash that identifies a person in every service without storing who they are.

All four services hash the same normalised email with the same secret key, so a request that
names an email finds the person everywhere, while logs, indexes and tombstones hold only the
hash. HMAC (not a plain hash) so that nobody without the key can test a guessed email.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata

import idna

# What the key's fingerprint is an HMAC of: fixed, so that equal keys give equal fingerprints.
_FINGERPRINT_LABEL = b"kokemuskauppa register: identity key fingerprint v1"
FINGERPRINT_LENGTH = 16


def normalise_email(email: str) -> str:
    """The form two spellings of one mailbox share: NFKC, trimmed, lower-cased, the domain in
    its IDNA ASCII form (`bücher.example` and `xn--bcher-kva.example` are one domain).

    Lower-case, not `casefold()`: case-folding merges mailboxes that are distinct (`straße@`
    and `strasse@`, a final and a medial sigma), and two people must never share a subject.
    """
    text = unicodedata.normalize("NFKC", email).strip()
    local, at, domain = text.rpartition("@")
    if not at:
        return text.lower()
    return f"{local.lower()}@{_ascii_domain(domain)}"


def _ascii_domain(domain: str) -> str:
    if domain.isascii():  # nearly every address: no IDNA work needed
        return domain.lower()
    try:
        # Non-transitional (IDNA2008) mapping, as email-validator applies: `straße.de` stays
        # itself rather than becoming `strasse.de`, another registrable domain.
        return idna.encode(domain, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError:
        # The contracts refuse such a domain before it is ever hashed; a raw string (a dead
        # letter's body) still gets a stable form, which no valid address shares.
        return domain.lower()


def key_fingerprint(key: str) -> str:
    """What tells two services' identity keys apart without revealing either: an HMAC of a
    fixed label, shortened. Services with different keys never find each other's people."""
    digest = hmac.new(key.encode(), _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()
    return digest[:FINGERPRINT_LENGTH]


class SubjectHasher:
    """Turns an email into the subject id used as key everywhere (hex HMAC-SHA256)."""

    def __init__(self, key: str) -> None:
        if not key:
            raise ValueError("the identity hash key must not be empty")
        self._key = key.encode()

    def __call__(self, email: str) -> str:
        digest = hmac.new(self._key, normalise_email(email).encode(), hashlib.sha256)
        return digest.hexdigest()

    def of_order_person(self, order_id: str, role: str) -> str:
        """The subject of a person the register knows by no email, only by their place on an
        order (a gift-card recipient): the keyed hash of `order:<order_id>:<role>`.

        No email shares it: a normalised address always holds an `@`, an order id never does
        (shared/contracts/fields.py `Identifier`).
        """
        reference = f"order:{order_id}:{role}"
        return hmac.new(self._key, reference.encode(), hashlib.sha256).hexdigest()

"""The parts of an access report (GDPR Art. 15(1)) beside the data itself, worked out from what
the services answered: `retention`, `purposes`, `sources` and `recipients`. Pure: no broker.

- `retention`: each category of data held on the person, with its period and the last day it
  is kept for them, as the services' sweeps count it (shared/retention_policy.py): a buyer's
  from their last order (the orders service) and from their last consent event or order (the
  consent service: each service decides by what it holds); a recipient's from each order; the
  disclosure log's from each order's year; a held disclosure's from when it was held; erasure
  and access requests from the year received; the record of this report in the audit log.
- `purposes`: those the held categories serve (shared/purposes.py), each with its legal basis.
- `sources`: where the data came from: the person's own orders, the buyer of an order that
  named them as its recipient, their own choices in the web shop.
- `recipients`: every provider that received their data, by id, name and country (from the
  provider registry), with which order and when.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from shared.purposes import PURPOSES
from shared.retention_policy import Bilingual, Category, Language, RetentionPolicy

Answers = Mapping[str, Mapping[str, Any]]

# Which purposes each kind of data held serves; the buyer's by the service that holds it.
_SERVES: Mapping[tuple[Category, str], tuple[str, ...]] = {
    (Category.BUYER, "orders"): (
        "customer-relationship",
        "disclosure-to-provider",
        "accounting",
    ),
    (Category.BUYER, "consent"): ("direct-marketing", "accountability"),
    (Category.RECIPIENT, "orders"): ("customer-relationship", "disclosure-to-provider"),
    (Category.LEDGER, "orders"): ("accounting",),
    (Category.DISCLOSURE_LOG, "disclosure"): ("disclosure-to-provider", "accountability"),
    (Category.HELD_DISCLOSURE, "disclosure"): ("disclosure-to-provider",),
    (Category.ERASURE_RECORD, "erasure"): ("accountability",),
    (Category.AUDIT_LOG, "all"): ("accountability",),
}
_HELD_HERE: Mapping[tuple[Category, str], Bilingual] = {
    (Category.BUYER, "orders"): Bilingual(
        fi="tietosi ostajana ja tilaushistoriasi", en="your data as a buyer and your order history"
    ),
    (Category.BUYER, "consent"): Bilingual(
        fi="lupatietosi ja niiden historia sekä nimesi markkinointia varten",
        en="your consents, their history, and your name for marketing",
    ),
    (Category.RECIPIENT, "orders"): Bilingual(
        fi="tietosi lahjakortin saajana tässä tilauksessa",
        en="your data as the gift card's recipient in this order",
    ),
    (Category.LEDGER, "orders"): Bilingual(
        fi="tilauksen kirjanpitotiedot, ilman tietojasi",
        en="the order's ledger lines, without your data",
    ),
    (Category.DISCLOSURE_LOG, "disclosure"): Bilingual(
        fi="merkintä siitä, mitä palveluntarjoaja sai tietoistasi ja milloin",
        en="the record of what the provider received of your data, and when",
    ),
    (Category.HELD_DISCLOSURE, "disclosure"): Bilingual(
        fi="pidätetty luovutus ja sen kopio tiedoistasi",
        en="a held disclosure and its copy of your data",
    ),
    (Category.ERASURE_RECORD, "erasure"): Bilingual(
        fi="pyyntösi ja sen kuittaus", en="your request and its receipt"
    ),
    (Category.AUDIT_LOG, "all"): Bilingual(
        fi="merkintä tästä tarkastuspyynnöstä (ja muista ylläpidon toimista, joissa sinut "
        "mainittiin) tarkastuslokissa",
        en="the audit log's record of this report (and of any other staff command that named you)",
    ),
}
_OWN_ORDERS = Bilingual(fi="omat tilauksesi", en="your own orders")
_BUYER_OF = Bilingual(fi="tilauksen {order} ostaja", en="the buyer of order {order}")
_OWN_CHOICES = Bilingual(
    fi="omat valintasi verkkokaupassa ja asiakaspalvelussa",
    en="your own choices in the web shop and with customer service",
)


def _moment(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _entry(
    policy: RetentionPolicy,
    category: Category,
    service: str,
    starts: datetime,
    language: Language,
    ends_on: date | None = None,
    **ids: Any,
) -> dict[str, Any]:
    retention = policy[category]
    texts = retention.describe(language)
    return {
        "category": str(category),
        "service": service,
        "what": _HELD_HERE[(category, service)].in_(language),
        **ids,
        "period": texts["period"],
        "rule": texts["rule"],
        "starts_at": starts.isoformat(),
        "ends_on": (ends_on or retention.ends_on(starts)).isoformat(),
        "then": texts["at_end"],
    }


def retention_section(
    answers: Answers, policy: RetentionPolicy, now: datetime, language: Language
) -> list[dict[str, Any]]:
    """Each category held on the person, what of it, its period and the last day it is kept."""
    orders, consent = answers["orders"], answers["consent"]
    disclosure, erasure = answers["disclosure"], answers["erasure"]
    entries = []
    bought = [_moment(order["placed_at"]) for order in orders["orders"] if "as_buyer" in order]
    if (profile := orders["profiles"].get("buyer")) is not None:
        bought.append(_moment(profile["as_of"]))
    if bought:
        entries.append(_entry(policy, Category.BUYER, "orders", max(bought), language))
    if consent.get("last_activity") is not None:
        last = _moment(consent["last_activity"])
        entries.append(_entry(policy, Category.BUYER, "consent", last, language))
    for order in orders["orders"]:
        if "as_recipient" in order:
            placed = _moment(order["placed_at"])
            entries.append(
                _entry(
                    policy,
                    Category.RECIPIENT,
                    "orders",
                    placed,
                    language,
                    order_id=order["order_id"],
                )
            )
    for order in orders.get("retained", []):
        until = date.fromisoformat(order["retention"]["until"])
        placed = _moment(order["placed_at"])
        entries.append(
            _entry(
                policy,
                Category.LEDGER,
                "orders",
                placed,
                language,
                until,
                order_id=order["order_id"],
            )
        )
    for sent in [*disclosure["sent"], *disclosure.get("retained", [])]:
        # An entry logged before orders' dates were: its send is the nearest date known.
        placed = _moment(sent.get("placed_at") or sent["sent_at"])
        ids = {"order_id": sent["order_id"], "provider_id": sent["provider_id"]}
        entries.append(
            _entry(policy, Category.DISCLOSURE_LOG, "disclosure", placed, language, **ids)
        )
    for held in disclosure["held"]:
        since = _moment(held["held_since"])
        ids = {"order_id": held["order_id"], "provider_id": held["provider_id"]}
        entries.append(
            _entry(policy, Category.HELD_DISCLOSURE, "disclosure", since, language, **ids)
        )
    for request in erasure["requests"]:
        received = _moment(request["received_at"])
        entries.append(
            _entry(
                policy,
                Category.ERASURE_RECORD,
                "erasure",
                received,
                language,
                request_id=request["request_id"],
            )
        )
    entries.append(_entry(policy, Category.AUDIT_LOG, "all", now, language))
    return entries


def purposes_section(
    retention: Iterable[Mapping[str, Any]], language: Language
) -> list[dict[str, str]]:
    """The purposes the data held serves, in the register description's order."""
    served = {
        purpose
        for entry in retention
        for purpose in _SERVES[(Category(entry["category"]), entry["service"])]
    }
    return [
        {
            "purpose": purpose.purpose_id,
            "what": purpose.title.in_(language),
            "legal_basis": purpose.basis.in_(language),
        }
        for purpose in PURPOSES
        if purpose.purpose_id in served
    ]


def sources_section(answers: Answers, language: Language) -> list[dict[str, Any]]:
    orders, consent = answers["orders"]["orders"], answers["consent"]
    sources: list[dict[str, Any]] = []
    own = sorted(order["order_id"] for order in orders if "as_buyer" in order)
    if own:
        sources.append({"source": _OWN_ORDERS.in_(language), "order_ids": own})
    for order in sorted(orders, key=lambda order: order["order_id"]):
        if "as_recipient" in order and "as_buyer" not in order:
            text = _BUYER_OF.in_(language).format(order=order["order_id"])
            sources.append({"source": text, "order_id": order["order_id"]})
    channels = sorted({change["source"] for change in consent.get("history", [])})
    if channels or consent.get("contact") is not None:
        sources.append({"source": _OWN_CHOICES.in_(language), "channels": channels})
    return sources


def recipients_section(
    answers: Answers, providers: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Every disclosure of the person's data, newest first: to whom (by id, name and country),
    of which order, which fields and when; after an erasure, those the log keeps."""
    registry = {provider["provider_id"]: provider for provider in providers}
    disclosure = answers["disclosure"]
    sent = [*disclosure["sent"], *disclosure.get("retained", [])]
    recipients = []
    for entry in sorted(sent, key=lambda entry: (str(entry["sent_at"]), entry["order_id"])):
        provider = registry.get(entry["provider_id"], {})
        recipients.append(
            {
                "provider_id": entry["provider_id"],
                "name": provider.get("name"),
                "country": provider.get("country"),
                "order_id": entry["order_id"],
                "sent_at": entry["sent_at"],
                "fields": entry["fields"],
            }
        )
    return list(reversed(recipients))

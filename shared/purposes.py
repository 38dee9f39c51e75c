"""Why the register processes personal data, each purpose with its legal basis (GDPR Art. 6),
in Finnish and English: for the register description and the access report (Art. 13(1)(c),
14(1)(c), 15(1)(a)). The purposes are those of the register description of 31.5.2008, read
against today's law; pure data.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.retention_policy import Bilingual


@dataclass(frozen=True)
class Purpose:
    purpose_id: str
    title: Bilingual
    basis: Bilingual


PURPOSES: tuple[Purpose, ...] = (
    Purpose(
        "customer-relationship",
        Bilingual(
            fi="Asiakassuhteen hoito: tilaukset, lahjakortit ja asiakasyhteydenpito",
            en="Managing the customer relationship: orders, gift cards and contact with customers",
        ),
        Bilingual(
            fi="sopimus ostajan kanssa (tietosuoja-asetuksen 6 artiklan 1 kohdan b alakohta)",
            en="the contract with the buyer (GDPR Art. 6(1)(b))",
        ),
    ),
    Purpose(
        "disclosure-to-provider",
        Bilingual(
            fi="Tilauksen tietojen luovuttaminen sille palveluntarjoajalle, jonka palvelun "
            "lahjakortti on ostettu, jotta palvelu voidaan toteuttaa",
            en="Disclosing an order's data to the provider whose service the gift card was "
            "bought for, so that the service can be delivered",
        ),
        Bilingual(
            fi="sopimus ostajan kanssa (6 artiklan 1 kohdan b alakohta); lahjakortin saajan "
            "osalta oikeutettu etu toimittaa ostajan tilaama lahja (6 artiklan 1 kohdan f "
            "alakohta)",
            en="the contract with the buyer (Art. 6(1)(b)); for the recipient, the legitimate "
            "interest in delivering the gift the buyer ordered (Art. 6(1)(f))",
        ),
    ),
    Purpose(
        "direct-marketing",
        Bilingual(
            fi="Rekisterinpitäjän oma suoramarkkinointi ja tiedotteet ostajille",
            en="The controller's own direct marketing and bulletins to buyers",
        ),
        Bilingual(
            fi="sähköiset viestit vain suostumuksella (6 artiklan 1 kohdan a alakohta); muutoin "
            "oikeutettu etu (6 artiklan 1 kohdan f alakohta), jota vastustaa voi milloin "
            "tahansa (21 artikla)",
            en="electronic messages only with consent (Art. 6(1)(a)); otherwise legitimate "
            "interest (Art. 6(1)(f)), which anyone may object to at any time (Art. 21)",
        ),
    ),
    Purpose(
        "accounting",
        Bilingual(
            fi="Kirjanpito: tilausten kirjanpitotiedot",
            en="Accounting: the ledger lines of orders",
        ),
        Bilingual(
            fi="lakisääteinen velvoite (6 artiklan 1 kohdan c alakohta; kirjanpitolaki 1336/1997)",
            en="legal obligation (Art. 6(1)(c); Finnish Accounting Act 1336/1997)",
        ),
    ),
    Purpose(
        "accountability",
        Bilingual(
            fi="Lainmukaisuuden osoittaminen: suostumusten historia, luovutusloki, "
            "poistokuittaukset ja tarkastusloki",
            en="Proving that the register follows the law: the history of consents, the "
            "disclosure log, erasure receipts and the audit log",
        ),
        Bilingual(
            fi="lakisääteinen velvoite (6 artiklan 1 kohdan c alakohta sekä 5 artiklan 2 kohta "
            "ja 7 artiklan 1 kohta)",
            en="legal obligation (Art. 6(1)(c) with Art. 5(2) and 7(1))",
        ),
    ),
)

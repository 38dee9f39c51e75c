"""Country codes the register accepts, and the ones it may disclose data to.

ISO 3166-1 alpha-2 as published in the IANA time zone database's iso3166.tab (249 codes).
"""

from __future__ import annotations

ISO_3166_ALPHA2: frozenset[str] = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
    """.split()  # noqa: SIM905 - a block of codes reads better than 249 lines
)

# European Economic Area: the EU 27 plus Iceland, Liechtenstein and Norway. Personal data is
# never disclosed to a provider outside it (GDPR Art. 44 ff.; the register description).
EU_27: frozenset[str] = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()  # noqa: SIM905
)
EEA: frozenset[str] = EU_27 | {"IS", "LI", "NO"}

EEA_RULE = (
    "personal data is disclosed only to providers in the EEA "
    "(EU 27, Iceland, Liechtenstein, Norway)"
)


def is_country_code(code: str) -> bool:
    return code in ISO_3166_ALPHA2


def is_in_eea(code: str) -> bool:
    return code in EEA

"""The register description from its templates and the register's facts, in both languages and
both formats; the HTML parsed as a browser would read it."""

from __future__ import annotations

from datetime import date
from html.parser import HTMLParser
from typing import Any

import pytest

from rekisteri.description import (
    ControllerSettings,
    describe,
    disclosed_to,
    load_template,
    render,
)
from rekisteri.document import Template, TemplateError, escape_markdown, to_markdown
from shared.countries import EEA
from shared.retention_policy import RetentionSettings, retention_policy

DATED = date(2026, 5, 31)
POLICY = retention_policy(RetentionSettings.model_construct())
CONTROLLER = ControllerSettings.model_construct()
# What the disclosure service answers to `providers.list`: names that are markup in both
# formats, one provider suspended.
REGISTRY = [
    {"provider_id": "spa-oy", "name": 'Kylpylä & <Spa> "Oy"', "country": "FI", "status": "active"},
    {"provider_id": "fjell", "name": "1. Fjell *AS*", "country": "NO", "status": "active"},
    {"provider_id": "kart-oy", "name": "Kart Oy", "country": "SE", "status": "suspended"},
]
ACTIVE_NAMES = ['Kylpylä & <Spa> "Oy"', "1. Fjell *AS*"]

# The 2008 description's headings, in its order: the Finnish one keeps them (some extended).
HEADINGS_2008 = [
    "Rekisteri",
    "Rekisterin pitäjä",
    "Yhteyshenkilö",
    "Henkilötietojen käsittelyn tarkoitus",
    "Rekisterin tietosisältö",
    "Rekisterin säännönmukaiset tietolähteet",
    "Säännönmukaiset tietojen luovutukset",
    "Tietojen säilyttäminen ja poistaminen",  # 2008: "Tietojen poistaminen"
    "Rekisterin suojauksen periaatteet",
    "Kielto-oikeus ja muut rekisteröidyn oikeudet",  # 2008: "Kielto-oikeus"
    "Päiväys",
]
# An Art. 13/14 notice's points, in a reader's order.
HEADINGS_EN = [
    "Who is responsible for your data",
    "Who to contact",
    "Why we process your data, and on what legal basis",
    "Whose data we process, and what data",
    "Where the data comes from",
    "Who receives your data",
    "Transfers outside the European Economic Area",
    "How long we keep your data",
    "How we protect your data",
    "Your rights",
    "Date",
]
EXPECTED = {"fi": ("Rekisteriseloste", HEADINGS_2008), "en": ("Privacy notice", HEADINGS_EN)}


class Page(HTMLParser):
    """What a browser would take from the page: its elements, headings, title and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.headings: list[tuple[str, str]] = []
        self.text: list[str] = []
        self.title = ""
        self.doctype = ""
        self.open: list[str] = []

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in ("meta",):
            self.open.append(tag)
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.headings.append((tag, ""))

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        if self.open and self.open[-1] in ("h1", "h2", "h3"):
            level, text = self.headings[-1]
            self.headings[-1] = (level, text + data)
        if self.open and self.open[-1] == "title":
            self.title += data
        self.text.append(data)


def parse(page: str) -> Page:
    parsed = Page()
    parsed.feed(page)
    parsed.close()
    assert not parsed.open, f"left open: {parsed.open}"
    return parsed


def description(language: str, output_format: str, **changes: Any) -> str:
    controller = changes.pop("controller", CONTROLLER)
    policy = changes.pop("policy", POLICY)
    registry = changes.pop("registry", REGISTRY)
    document = describe(language, controller, policy, disclosed_to(registry), DATED)  # type: ignore[arg-type]
    return render(document, output_format)  # type: ignore[arg-type]


@pytest.mark.parametrize("language", ["fi", "en"])
def test_the_html_page_is_complete_accessible_and_self_contained(language: str) -> None:
    page = description(language, "html")
    parsed = parse(page)
    title, sections = EXPECTED[language]

    assert parsed.doctype.lower() == "doctype html"
    [html_tag] = [attrs for tag, attrs in parsed.tags if tag == "html"]
    assert html_tag.get("lang") == language
    assert any(tag == "meta" and attrs.get("charset") == "utf-8" for tag, attrs in parsed.tags)
    assert parsed.title == title
    assert [text for level, text in parsed.headings if level == "h1"] == [title]
    assert parsed.headings[0] == ("h1", title)
    assert [text for level, text in parsed.headings if level == "h2"] == sections
    # Nothing is loaded from elsewhere: no scripts, stylesheets, images, fonts or frames.
    assert not {tag for tag, _ in parsed.tags} & {"script", "link", "img", "iframe", "object"}
    for tag, attrs in parsed.tags:
        for name in ("src", "href", "srcset", "data", "action"):
            assert name not in attrs, f"<{tag} {name}>"
    assert "url(" not in page and "@import" not in page


@pytest.mark.parametrize("language", ["fi", "en"])
def test_the_html_names_every_active_provider_escaped_and_no_suspended_one(language: str) -> None:
    page = description(language, "html")
    text = "".join(parse(page).text)
    country = {"fi": ("Suomi", "Norja"), "en": ("Finland", "Norway")}[language]
    assert f'Kylpylä & <Spa> "Oy" ({country[0]})' in text
    assert f"1. Fjell *AS* ({country[1]})" in text
    assert "Kylpylä &amp; &lt;Spa&gt; &quot;Oy&quot;" in page
    assert "<Spa>" not in page
    assert "Kart Oy" not in page


@pytest.mark.parametrize("language", ["fi", "en"])
def test_the_markdown_has_the_same_structure_and_escapes_provider_names(language: str) -> None:
    markdown = description(language, "markdown")
    title, sections = EXPECTED[language]
    headings = [line for line in markdown.splitlines() if line.startswith("#")]
    assert headings == [f"# {title}", *(f"## {section}" for section in sections)]
    country = {"fi": ("Suomi", "Norja"), "en": ("Finland", "Norway")}[language]
    # Escaped: `1.` would start a numbered list, `*AS*` be emphasis, `<Spa>` an HTML tag.
    assert f'- Kylpylä \\& \\<Spa\\> "Oy" ({country[0]})' in markdown.splitlines()
    assert f"- 1\\. Fjell \\*AS\\* ({country[1]})" in markdown.splitlines()
    assert "Kart Oy" not in markdown


@pytest.mark.parametrize(("language", "output_format"), [("fi", "markdown"), ("en", "html")])
def test_the_retention_periods_are_those_of_the_policy(language: str, output_format: str) -> None:
    policy = retention_policy(RetentionSettings(buyer_months=48, held_disclosure_days=14))
    text = description(language, output_format, policy=policy)
    if language == "fi":
        assert "säilytetään 48 kuukautta ostajan viimeisimmästä tilauksesta" in text
        assert "säilytetään 14 päivää pidättämisestä" in text
        assert "kirjanpitolaki (1336/1997) 2 luku 10 §" in text
    else:
        assert "kept 48 months after the buyer&#x27;s last order or consent event" in text
        assert "kept 14 days after it was held" in text
        assert "36 months" not in text


def test_the_controller_comes_from_the_settings_and_unset_lines_are_left_out() -> None:
    default = description("fi", "markdown")
    assert "- Kokemuskauppa Oy (y-tunnus 2173478-3)" in default
    assert "- Syrjälänkatu 2 B 9, 40700 Jyväskylä, Suomi" in default
    assert "Pyynnöt voi lähettää sähköpostitse osoitteeseen posti@kokemuskauppa.com." in default

    other = ControllerSettings(
        name="Elämyslahja Ab",
        business_id="1234567-8",
        address="Storgatan 1, 10100 Stockholm",
        country="se",
        phone="",
        contact_person="Tietosuojavastaava Maija Meikäläinen",
        contact_email="tietosuoja@example.fi",
        register_name_en="Elämyslahja Ab's customer register",
    )
    changed = description("en", "markdown", controller=other)
    assert "- Controller: Elämyslahja Ab (business ID 1234567-8)" in changed
    assert "- Address: Storgatan 1, 10100 Stockholm, Sweden" in changed
    assert "Phone:" not in changed
    assert "- Tietosuojavastaava Maija Meikäläinen" in changed
    assert "To exercise your rights, write to tietosuoja@example.fi." in changed
    assert "Elämyslahja Ab's customer register" in changed


def test_a_register_with_no_active_provider_says_so() -> None:
    suspended = [dict(REGISTRY[2])]
    assert "At present no data is disclosed to any provider." in description(
        "en", "markdown", registry=suspended
    )
    assert "Tietoja ei tällä hetkellä luovuteta yhdellekään palveluntarjoajalle." in (
        description("fi", "html", registry=[])
    )


def test_the_finnish_date_is_written_as_in_2008_and_the_english_one_in_words() -> None:
    assert "<h2>Päiväys</h2>\n<p>31.5.2026</p>" in description("fi", "html")
    assert "as it was on 31 May 2026." in description("en", "markdown")


@pytest.mark.parametrize("language", ["fi", "en"])
def test_every_eea_country_has_a_name(language: str) -> None:
    template = load_template(language)  # type: ignore[arg-type]
    assert {code for code in EEA if not template.has_phrase(f"country.{code}")} == set()


def test_only_active_providers_in_the_eea_are_named() -> None:
    rows = [
        *REGISTRY,
        {"provider_id": "old", "name": "Legacy Inc", "country": "US", "status": "active"},
    ]
    assert [p.name for p in disclosed_to(rows)] == ["1. Fjell *AS*", 'Kylpylä & <Spa> "Oy"']


# --- the template format ---------------------------------------------------------------------


def test_a_fact_is_text_and_cannot_add_structure() -> None:
    template = Template("t", "# Title\n\n- $providers\n\nOwner: $owner\n%empty.providers: none")
    document = template.fill(
        "en", {"owner": "## not a heading"}, {"providers": ["# Heading?", "- item?"]}
    )
    markdown = to_markdown(document)
    assert markdown.splitlines() == [
        "# Title",
        "",
        "- \\# Heading?",
        "- \\- item?",
        "",
        "Owner: \\#\\# not a heading",
    ]


def test_a_template_naming_an_unknown_fact_is_refused_with_its_line() -> None:
    with pytest.raises(TemplateError, match=r"line 3: \$nobody is not a known fact"):
        Template("t", "# Title\n\n$nobody").fill("en", {})


def test_a_template_must_begin_with_its_one_title() -> None:
    with pytest.raises(TemplateError, match="one `# ` heading"):
        Template("t", "text\n\n# Title").fill("en", {})


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("31.5.2026", "31.5.2026"),
        ("1. Oy", "1\\. Oy"),
        ("2) Oy", "2\\) Oy"),
        ("---", "\\---"),
        ("[link](http://x)", "\\[link\\](http://x)"),
        ("a_b*c`d", "a\\_b\\*c\\`d"),
    ],
)
def test_markdown_escaping(text: str, escaped: str) -> None:
    assert escape_markdown(text) == escaped

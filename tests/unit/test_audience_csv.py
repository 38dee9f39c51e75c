"""The audience export cannot carry a spreadsheet formula in from a customer's name."""

from __future__ import annotations

import pytest

from rekisteri.consent import spreadsheet_safe


@pytest.mark.parametrize(
    "name",
    ['=HYPERLINK("http://x","Aino")', "+358", "-1+2", "@SUM(A1)", "\tTab", "\rReturn"],
)
def test_a_value_a_spreadsheet_would_evaluate_is_quoted(name: str) -> None:
    assert spreadsheet_safe(name) == "'" + name


@pytest.mark.parametrize("name", ["Aino", "aino.virtanen@example.fi", "Öhman", "O'Brien", ""])
def test_ordinary_values_are_written_as_they_are(name: str) -> None:
    assert spreadsheet_safe(name) == name

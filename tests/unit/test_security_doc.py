"""docs/security.md's permission table is what shared/permissions.py grants."""

from __future__ import annotations

import difflib

import pytest

from shared.topology import SERVICES
from tools import security_doc


def test_the_permission_table_in_the_document_is_what_the_code_grants() -> None:
    committed = security_doc.DOCUMENT.read_text(encoding="utf-8")
    assert security_doc.BEGIN in committed and security_doc.END in committed
    updated = security_doc.update(committed)
    if committed != updated:
        diff = difflib.unified_diff(
            committed.splitlines(), updated.splitlines(), "committed", "generated", lineterm=""
        )
        pytest.fail(
            "docs/security.md's permission table is stale: run `make security-doc` and commit "
            "the result.\n" + "\n".join(list(diff)[:40])
        )


def test_every_party_and_every_right_is_in_the_table() -> None:
    table = security_doc.render()
    headings = [f"the {service} service" for service in SERVICES] + [
        "web shop",
        "staff",
        "provider",
    ]
    for heading in headings:
        assert f"### {heading}\n" in table, heading
    assert table.count("| configure |") == table.count("| read |") == len(headings)

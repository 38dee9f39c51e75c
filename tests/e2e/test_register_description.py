"""The register description names the providers of the running registry: the services as
processes, the real `rekisteri`, a provider added, another suspended."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.harness import Register, rekisteri
from tests.unit.test_register_description import parse


def run(staff_url: str, *arguments: str, env: dict[str, str] | None = None) -> str:
    """The tool's standard output; fails the test when the command fails."""
    done = rekisteri(staff_url, *arguments, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_the_description_names_the_active_provider_and_not_the_suspended_one(
    register: Register, staff_url: str, tmp_path: Path
) -> None:
    run(staff_url, "providers", "add", "spa-oy", "--name", "Kylpylä & <Spa> Oy", "--country", "FI")
    run(staff_url, "providers", "add", "kart-oy", "--name", "Kart Oy", "--country", "SE")
    run(staff_url, "providers", "suspend", "kart-oy")

    page_file = tmp_path / "rekisteriseloste.html"
    written = rekisteri(
        staff_url,
        "register-description",
        "--language",
        "fi",
        "--format",
        "html",
        "--output",
        str(page_file),
    )
    assert written.returncode == 0, written.stderr
    assert f"register description written to {page_file}" in written.stderr
    page = page_file.read_text(encoding="utf-8")
    parsed = parse(page)
    assert [attrs.get("lang") for tag, attrs in parsed.tags if tag == "html"] == ["fi"]
    assert "Kylpylä & <Spa> Oy (Suomi)" in "".join(parsed.text)
    assert "Kart Oy" not in page

    # English Markdown on standard output, with the periods of the tool's settings.
    markdown = run(
        staff_url,
        "register-description",
        "--language",
        "en",
        env={"RETENTION_BUYER_MONTHS": "48"},
    )
    assert markdown.startswith("# Privacy notice\n")
    assert "- Kylpylä \\& \\<Spa\\> Oy (Finland)" in markdown.splitlines()
    assert "Kart Oy" not in markdown
    assert "kept 48 months after the buyer's last order or consent event" in markdown

    # Activated again, it is named again: the registry is asked each time.
    run(staff_url, "providers", "activate", "kart-oy")
    assert "- Kart Oy (Sweden)" in run(staff_url, "register-description", "--language", "en")


def test_without_the_disclosure_service_there_is_no_description(staff_url: str) -> None:
    # Nothing runs in this virtual host: a description without the registry would mislead.
    refused = rekisteri(staff_url, "--timeout", "1", "register-description")
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert "disclosure service" in refused.stderr

"""Nothing secret in the repository: no credentials in URLs, no keys, no tokens.

Reads every file git tracks. The only passwords allowed are the development default (guest),
the placeholders of the documentation and the obviously fake ones of unit-test fixtures.
Secrets live in `.env` (git-ignored; `.env.example` documents them empty) or a secret store.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

ALLOWED_PASSWORDS = {
    "guest",  # RabbitMQ's development login, which production refuses (shared/settings.py)
    "PASSWORD",  # placeholders in the documentation
    "...",
    "***",  # a masked password
    # unit-test fixtures
    "p",
    "s3cret",
    "s3cret-_x",
    "fake-password",
}
CREDENTIALS_IN_URL = re.compile(
    r"\b[a-z][a-z0-9+.-]*://(?P<user>[^\s:/@'\"`<>]+):(?P<password>[^\s@/'\"`<>]*)@"
)
SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "bearer token": re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{20,}"),
    "secret assigned as a literal": re.compile(
        r"(?i)\b\w*(?:password|passwd|secret|token|api[_-]?key)\w*[\"']?\s*[:=]\s*[\"']"
        r"(?P<value>[^\"'\s]{6,})[\"']"
    ),
}


def tracked_files() -> list[Path]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in listed.decode().split("\0") if name]


def text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
        return None


def test_no_tracked_file_holds_a_secret() -> None:
    files = tracked_files()
    assert len(files) > 50, "git lists the project's files"
    found = []
    for path in files:
        text = text_of(path)
        if text is None:
            continue
        name = path.relative_to(ROOT)
        for match in CREDENTIALS_IN_URL.finditer(text):
            password = match["password"]
            if password not in ALLOWED_PASSWORDS and not password.startswith("${"):
                found.append(f"{name}: a URL with the password of {match['user']}")
        for kind, pattern in SECRET_PATTERNS.items():
            for match in pattern.finditer(text):
                if match.groupdict().get("value") not in ALLOWED_PASSWORDS:
                    found.append(f"{name}: {kind}")
    assert not found, "\n".join(found)


# Put together at run time, so that this file does not hold what it looks for.
LEAKS = [
    "RABBITMQ_URL=amqp://orders:" + "Xq7-real-looking" + "@rabbitmq:5672/register",
    "mongodb://orders:" + "hunter22" + "@mongodb:27017/?authSource=orders",
    "-----BEGIN OPENSSH " + "PRIVATE KEY-----",
    "RABBITMQ_MANAGEMENT_PASSWORD = " + '"correct-horse-battery"',
    "token: ghp_" + "a" * 36,
]


@pytest.mark.parametrize("leak", LEAKS)
def test_the_check_finds_what_a_leak_looks_like(leak: str) -> None:
    in_url = any(m["password"] not in ALLOWED_PASSWORDS for m in CREDENTIALS_IN_URL.finditer(leak))
    assert in_url or any(pattern.search(leak) for pattern in SECRET_PATTERNS.values())

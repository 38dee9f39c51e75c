"""The disclosure store's SQLite schema, and what brings an older file up to it.

`disclosure_subjects` names the people of each log entry: by hash, or an erased person's
reference, with their place on the order (`role`: `buyer` or `recipient`; '' for rows logged
before the log kept it). A person who bought for themselves has a row for each role.
"""

from __future__ import annotations

import sqlite3

from shared.erasure.records import SQLITE_SCHEMA as ERASURE_SCHEMA

UNKNOWN_ROLE = ""
SUBJECTS_TABLE = """CREATE TABLE IF NOT EXISTS disclosure_subjects (
        disclosure_id TEXT NOT NULL REFERENCES disclosures ON DELETE CASCADE,
        subject TEXT NOT NULL,
        role TEXT NOT NULL,
        PRIMARY KEY (disclosure_id, subject, role)
    ) WITHOUT ROWID"""

SCHEMA = (
    *ERASURE_SCHEMA,
    # The columns are the `Provider`'s fields, by name.
    """CREATE TABLE IF NOT EXISTS providers (
        provider_id TEXT PRIMARY KEY,
        name TEXT NOT NULL, country TEXT NOT NULL, contact_email TEXT, status TEXT NOT NULL,
        created_at INTEGER NOT NULL, created_by TEXT NOT NULL,
        changed_at INTEGER NOT NULL, changed_by TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS disclosures (
        disclosure_id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL,
        provider_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        status TEXT NOT NULL,
        product_ids TEXT NOT NULL,
        fields TEXT,
        placed_at INTEGER,
        recorded_at INTEGER NOT NULL,
        sent_at INTEGER,
        released_by TEXT,
        hold_reason TEXT,
        claimed_at INTEGER,
        kept_until TEXT
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS disclosures_order ON disclosures (order_id, status, recorded_at)",
    "CREATE INDEX IF NOT EXISTS disclosures_status ON disclosures (status, recorded_at)",
    "CREATE INDEX IF NOT EXISTS disclosures_provider "
    "ON disclosures (provider_id, status, sent_at DESC)",
    "CREATE INDEX IF NOT EXISTS disclosures_kept_until ON disclosures (kept_until) "
    "WHERE kept_until IS NOT NULL",
    # The log's retention runs from its order's date: the sweep's search.
    "CREATE INDEX IF NOT EXISTS disclosures_placed ON disclosures (placed_at)",
    SUBJECTS_TABLE,
    "CREATE INDEX IF NOT EXISTS disclosure_subjects_subject ON disclosure_subjects (subject)",
    """CREATE TABLE IF NOT EXISTS held_disclosures (
        disclosure_id TEXT PRIMARY KEY REFERENCES disclosures ON DELETE CASCADE,
        disclosure TEXT NOT NULL
    ) WITHOUT ROWID""",
)


def add_roles(connection: sqlite3.Connection) -> None:
    """A file from before roles were logged: its `disclosure_subjects` rebuilt with the column
    (the key changes, which no ALTER TABLE can do), every row's role unknown. Run before the
    schema, whose index on the new table would otherwise stay with the old one."""
    columns = {row[1] for row in connection.execute("PRAGMA table_info(disclosure_subjects)")}
    if not columns or "role" in columns:
        return
    connection.execute("ALTER TABLE disclosure_subjects RENAME TO disclosure_subjects_before_roles")
    connection.execute(SUBJECTS_TABLE)
    connection.execute(
        "INSERT INTO disclosure_subjects (disclosure_id, subject, role) "
        "SELECT disclosure_id, subject, ? FROM disclosure_subjects_before_roles",
        (UNKNOWN_ROLE,),
    )
    connection.execute("DROP TABLE disclosure_subjects_before_roles")

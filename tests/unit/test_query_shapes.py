"""The index-coverage rule the test suite applies to every query a store runs."""

from __future__ import annotations

import pytest

from tests.doubles.mongomock_async import MongomockClient
from tests.doubles.query_shapes import QueryLog, is_served, shape_of, uncovered

INDEXES = [
    ["_id"],
    ["buyer_subject", "placed_at"],
    ["status", "recorded_at"],
    ["subjects", "recorded_at"],
]


@pytest.mark.parametrize(
    ("query", "sort"),
    [
        ({"_id": "KK-1"}, None),
        ({"_id": "x", "as_of": {"$lt": 5}}, None),
        ({"buyer_subject": "h"}, [("placed_at", -1)]),
        ({"buyer_subject": "h", "placed_at": {"$gte": 1}}, None),
        ({"status": {"$in": ["held", "stuck"]}}, "recorded_at"),
        ({}, None),
        ({}, "_id"),
        ({"$or": [{"subjects": "h"}, {"status": "held"}]}, None),
        # A range on the sort field: the sort's index key bounds it too.
        ({"status": "held", "recorded_at": {"$gte": 1}}, [("recorded_at", -1)]),
    ],
)
def test_queries_an_index_serves(query: dict[str, object], sort: object) -> None:
    assert is_served(shape_of(query, sort), INDEXES)


@pytest.mark.parametrize(
    ("query", "sort"),
    [
        ({"placed_at": {"$gte": 1}}, None),  # range without the leading equality
        ({"buyer_subject": "h"}, "total_cents"),  # sort the index does not give
        ({"contact.email": "a@example.fi"}, None),  # no index at all
        ({}, "recorded_at"),  # a whole collection sorted on an unindexed field
        ({"$or": [{"subjects": "h"}, {"order_id": "KK-1"}]}, None),  # one branch unserved
        ({"recorded_at": {"$gte": 1}}, "placed_at"),  # a range on a field the index lacks
    ],
)
def test_queries_no_index_serves(query: dict[str, object], sort: object) -> None:
    assert not is_served(shape_of(query, sort), INDEXES)


async def test_the_mongomock_double_records_what_it_is_asked_and_the_check_finds_the_gap(
    tmp_path,
) -> None:
    log_path = tmp_path / "recorded.jsonl"
    client = await MongomockClient.open(None, QueryLog(log_path))
    orders = client["orders"]["orders"]
    await orders.create_index([("buyer_subject", 1), ("placed_at", -1)])
    await orders.insert_one({"_id": "KK-1", "buyer_subject": "h", "placed_at": 1, "total_cents": 5})
    await orders.find({"buyer_subject": "h"}).sort("placed_at", -1).to_list(None)
    await orders.update_one({"_id": "KK-1"}, {"$set": {"total_cents": 6}})
    assert uncovered([log_path]) == []
    await orders.count_documents({"total_cents": {"$gt": 1}})
    [problem] = uncovered([log_path])
    assert "orders.orders count_documents" in problem and "total_cents" in problem
    assert "KK-1" not in log_path.read_text(), "shapes only, never values"

"""What a batch counts, decided without Kafka or Couchbase (analytics/plan.py): the document
each message claims, the records a claimed batch applies, and the dead letters it sends."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

from confluent_kafka import Message
from orderpipeline.analytics.plan import (
    CONFLICT_REASON,
    claims_of,
    conflicting,
    invalid_of,
    not_sent_yet,
    plan_batch,
    resolve,
    sum_ahead,
)
from orderpipeline.core.aggregate import PartitionAggregate, Record, apply_batch, combine
from orderpipeline.core.aggregate_store import PAYMENT_PREFIX, SOURCE_FIELD, PartitionId, claim_of
from orderpipeline.core.fraud_rule import FraudRule
from orderpipeline.core.order import Order
from orderpipeline.core.payment import Payment

from tests.kafka_fakes import FakeMessage

ORDERS = PartitionId("orders", 0)
PAYMENTS = PartitionId("payments", 1)
RULE = FraudRule(amount_threshold=1000.0)


def an_order(order_id: str, amount: float = 10.0, country: str = "DE") -> Order:
    return Order(
        order_id=order_id,
        customer_id=1,
        amount=amount,
        currency="USD",
        country=country,
        status="CREATED",
        created_at=datetime(2026, 11, 27, 3, 40, tzinfo=UTC),
    )


def msg(pid: PartitionId, offset: int, value: bytes | None) -> Message:
    return cast(Message, FakeMessage(pid.topic, pid.partition, offset, value))


def plans_of(work: dict[PartitionId, list[Message]]) -> Any:
    return plan_batch(work, "orders", 65536)


def test_orders_and_payments_claim_their_documents_named_by_their_source() -> None:
    order = an_order("ord_1")
    payment = Payment.of(order, "2026-11-27T03:40:01.000Z")
    plans = plans_of({ORDERS: [msg(ORDERS, 4, order.to_json())]})
    plans.update(plans_of({PAYMENTS: [msg(PAYMENTS, 9, payment.to_json())]}))
    claims = claims_of(plans)
    source = {"topic": "orders", "partition": 0, "offset": 4}
    assert json.loads(claims["ord_1"].doc) == {
        **order.model_dump(mode="json"),
        SOURCE_FIELD: source,
    }
    assert claims["ord_1"].source == source
    stored_payment = json.loads(claims[PAYMENT_PREFIX + "ord_1"].doc)
    assert stored_payment == {
        **payment.document(),
        SOURCE_FIELD: {"topic": "payments", "partition": 1, "offset": 9},
    }


def test_owned_claims_count_and_the_fraud_rule_flags_the_order() -> None:
    flagged = an_order("ord_big", amount=5000.0)
    plans = plans_of({ORDERS: [msg(ORDERS, 0, an_order("ord_a").to_json())]})
    plans[ORDERS] += plans_of({ORDERS: [msg(ORDERS, 1, flagged.to_json())]})[ORDERS]
    claims = claims_of(plans)
    resolved = resolve(plans, claims, set(claims), RULE, {ORDERS: 2})
    records = resolved.records[ORDERS]
    assert [(r.offset, r.order is not None, r.alert_reason is not None) for r in records] == [
        (0, True, False),
        (1, True, True),
    ]
    assert resolved.duplicates == 0


def test_a_second_message_with_the_same_order_id_in_one_batch_counts_once() -> None:
    order = an_order("ord_1")
    plans = plans_of({ORDERS: [msg(ORDERS, 0, order.to_json()), msg(ORDERS, 1, order.to_json())]})
    claims = claims_of(plans)
    assert claims["ord_1"].source["offset"] == 0
    resolved = resolve(plans, claims, set(claims), RULE, {})
    assert [r.order is not None for r in resolved.records[ORDERS]] == [True, False]
    assert resolved.duplicates == 1
    assert [m.offset() for m, _ in resolved.duplicate_orders] == [1]


def test_a_claim_stored_by_another_message_counts_nothing_but_still_moves_the_offset() -> None:
    plans = plans_of({ORDERS: [msg(ORDERS, 7, an_order("ord_1").to_json())]})
    resolved = resolve(plans, claims_of(plans), set(), RULE, {ORDERS: 8})
    assert [(r.offset, r.order) for r in resolved.records[ORDERS]] == [(7, None)]
    assert resolved.duplicates == 1


def test_the_partition_moves_past_transaction_markers_after_its_last_record() -> None:
    plans = plans_of({PAYMENTS: [msg(PAYMENTS, 3, b'{"order_id":"o","status":"PAID","amount":1}')]})
    resolved = resolve(plans, claims_of(plans), {PAYMENT_PREFIX + "o"}, RULE, {PAYMENTS: 5})
    assert [(r.offset, r.payment) for r in resolved.records[PAYMENTS]] == [(3, True), (4, False)]


def test_invalid_messages_become_dead_letters_that_count_nothing() -> None:
    plans = plans_of({ORDERS: [msg(ORDERS, 0, b"not json"), msg(ORDERS, 1, None)]})
    assert [(m.offset(), reason) for m, reason in invalid_of(plans)] == [
        (0, "not JSON"),
        (1, "empty message"),
    ]
    assert claims_of(plans) == {}
    resolved = resolve(plans, {}, set(), RULE, {})
    assert [(r.offset, r.order, r.payment) for r in resolved.records[ORDERS]] == [
        (0, None, False),
        (1, None, False),
    ]


def test_only_a_duplicate_with_different_content_is_a_conflict() -> None:
    first = an_order("ord_1")
    same, other = msg(ORDERS, 5, b""), msg(ORDERS, 6, b"")
    stored = {"ord_1": {**first.model_dump(mode="json"), SOURCE_FIELD: {"offset": 0}}}
    changed = an_order("ord_1", amount=99.0)
    assert conflicting([(same, first), (other, changed)], stored) == [(other, CONFLICT_REASON)]


def test_dead_letters_below_the_committed_offset_were_sent_already() -> None:
    dead = [(msg(ORDERS, 3, b"x"), "not JSON"), (msg(ORDERS, 8, b"x"), "not JSON")]
    assert [m.offset() for m, _ in not_sent_yet(dead, {ORDERS: 5})] == [8]
    assert len(not_sent_yet(dead, {})) == 2


def test_a_claimed_document_is_the_body_with_its_source_whatever_the_topic_name() -> None:
    claim = claim_of(b'{"a":1}', 'odd "topic" \\ name', 2, 7)
    source = {"topic": 'odd "topic" \\ name', "partition": 2, "offset": 7}
    assert json.loads(claim.doc) == {"a": 1, SOURCE_FIELD: source}
    assert claim.source == source


def test_a_batch_summed_ahead_is_what_applying_it_as_granted_gives() -> None:
    orders = [an_order(f"ord_{i}", amount=100.0 * i) for i in range(6)]
    plans = plans_of({ORDERS: [msg(ORDERS, 10 + i, o.to_json()) for i, o in enumerate(orders)]})
    ahead = sum_ahead(plans, RULE, {ORDERS: 17}, {ORDERS: 10})
    granted = resolve(plans, ahead.claims, set(ahead.claims), RULE, {ORDERS: 17})
    base = apply_batch(PartitionAggregate(), [Record(i) for i in range(10)])
    assert combine(base, ahead.deltas[ORDERS]) == apply_batch(base, granted.records[ORDERS])
    assert combine(base, ahead.deltas[ORDERS]).next_offset == 17

"""What a batch counts: each message parsed into the document it claims (before the claim),
then, given which claims this batch owns, the records each partition applies (after it).

Pure: no Kafka call, no Couchbase call. The Couchbase side is writer.py, the loop consumer.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from confluent_kafka import Message

from orderpipeline.core.aggregate import JsonDict, PartitionAggregate, Record, apply_batch
from orderpipeline.core.aggregate_store import (
    PAYMENT_PREFIX,
    SOURCE_FIELD,
    Claim,
    PartitionId,
    claim_of,
)
from orderpipeline.core.fraud_rule import REASON, FraudRule, is_suspicious
from orderpipeline.core.order import InvalidMessage, Order, parse_order
from orderpipeline.core.payment import parse_payment

CONFLICT_REASON = "duplicate order_id with different content (first stored wins)"

DeadLetter = tuple[Message, str]


class Planned(NamedTuple):
    """One fresh message: the document it claims (`key`, `claim`) and what it counts if it
    owns that document; `invalid` (the reason) when it is a dead letter. (A NamedTuple: one
    per message, built in a third of a frozen dataclass's time.)"""

    msg: Message
    offset: int
    key: str | None = None
    claim: Claim | None = None
    order: Order | None = None
    invalid: str | None = None


# The fresh messages of one batch, by partition, in offset order.
Plans = dict[PartitionId, list[Planned]]


def plan_message(pid: PartitionId, msg: Message, orders_topic: str, max_bytes: int) -> Planned:
    """Parse one message of the orders or the payments topic (core/order.py, core/payment.py)."""
    offset = msg.offset() or 0
    topic, partition = pid
    try:
        if topic == orders_topic:
            order = parse_order(msg.value(), max_bytes)
            claim = claim_of(order.to_json(), topic, partition, offset)
            return Planned(msg, offset, order.order_id, claim, order)
        payment = parse_payment(msg.value(), max_bytes)
        claim = claim_of(payment.document_json(), topic, partition, offset)
        return Planned(msg, offset, PAYMENT_PREFIX + payment.order_id, claim)
    except InvalidMessage as exc:
        return Planned(msg, offset, None, None, None, exc.reason)


def plan_batch(
    work: Mapping[PartitionId, list[Message]], orders_topic: str, max_bytes: int
) -> Plans:
    return {
        pid: [plan_message(pid, msg, orders_topic, max_bytes) for msg in msgs]
        for pid, msgs in work.items()
    }


def claims_of(plans: Plans) -> dict[str, Claim]:
    """The documents a batch inserts: for a key claimed twice in one batch, the first message
    (the other then counts as a duplicate, as it would in a later batch)."""
    claims: dict[str, Claim] = {}
    for plan in plans.values():
        for p in plan:
            if p.key is not None and p.claim is not None:
                claims.setdefault(p.key, p.claim)
    return claims


def invalid_of(plans: Plans) -> list[DeadLetter]:
    return [(p.msg, p.invalid) for plan in plans.values() for p in plan if p.invalid is not None]


@dataclass
class Resolved:
    """The records each partition applies, and the duplicates (messages not counted because
    another message owns their document)."""

    records: dict[PartitionId, list[Record]]
    duplicates: int
    # Duplicate orders: dead letters if their content differs from the stored one.
    duplicate_orders: list[tuple[Message, Order]]


def resolve(
    plans: Plans,
    claims: Mapping[str, Claim],
    owned_keys: set[str],
    rule: FraudRule,
    ends: Mapping[PartitionId, int],
) -> Resolved:
    """The records of a claimed batch. A message counts only if the stored document names it
    as its `_source`; every message, counted or not, moves its partition's offset on."""
    records: dict[PartitionId, list[Record]] = {}
    duplicates = 0
    duplicate_orders: list[tuple[Message, Order]] = []
    for pid, plan in plans.items():
        out = records[pid] = []
        for p in plan:
            if p.key is None:  # a dead letter
                out.append(Record(p.offset))
                continue
            claim = p.claim
            # Mostly the very claim this message made (claims_of keeps the first one): the
            # identity test spares a dict comparison per message.
            mine = (
                p.key in owned_keys
                and claim is not None
                and ((first := claims[p.key]) is claim or first.source == claim.source)
            )
            if not mine:
                duplicates += 1
                if p.order is not None:
                    duplicate_orders.append((p.msg, p.order))
                out.append(Record(p.offset))
            elif p.order is not None:
                flagged = is_suspicious(p.order, rule)
                out.append(Record(p.offset, p.order, REASON if flagged else None))
            else:
                out.append(Record(p.offset, payment=True))
        end = ends.get(pid)
        # Past transaction markers after the last record, so a partition of a transactional
        # topic (payments) can be applied up to its end.
        if end is not None and plan and end - 1 > plan[-1].offset:
            out.append(Record(end - 1))
    return Resolved(records, duplicates, duplicate_orders)


@dataclass(frozen=True)
class SummedAhead:
    """A batch resolved and summed before its claims are answered, as if every claim it makes
    were granted (what almost always happens). If they are, the writer adds `deltas` to the
    stored aggregates (core/aggregate.py `combine`) instead of applying the batch while the
    loop waits; otherwise it resolves and applies the batch as granted."""

    claims: dict[str, Claim]
    resolved: Resolved
    deltas: dict[PartitionId, PartitionAggregate]


def sum_ahead(
    plans: Plans,
    rule: FraudRule,
    ends: Mapping[PartitionId, int],
    next_offsets: Mapping[PartitionId, int],
) -> SummedAhead:
    """`plans` summed per partition from `next_offsets` (the stored positions; a batch still
    being written below this one only moves them down to where this batch starts)."""
    claims = claims_of(plans)
    resolved = resolve(plans, claims, set(claims), rule, ends)
    deltas = {
        pid: apply_batch(PartitionAggregate(next_offset=next_offsets[pid]), records)
        for pid, records in resolved.records.items()
    }
    return SummedAhead(claims, resolved, deltas)


def conflicting(
    duplicates: list[tuple[Message, Order]], stored: Mapping[str, JsonDict]
) -> list[DeadLetter]:
    """Duplicates whose content differs from the order stored first under their order_id.

    First write wins; an identical duplicate (a redelivery, a producer retry) is just not
    counted, but a different order reusing the id is a producer bug worth a dead letter.
    """
    conflicts = []
    for msg, order in duplicates:
        first = dict(stored.get(order.order_id, {}))
        first.pop(SOURCE_FIELD, None)
        if first and first != order.model_dump(mode="json"):
            conflicts.append((msg, CONFLICT_REASON))
    return conflicts


def not_sent_yet(dead: list[DeadLetter], committed: Mapping[PartitionId, int]) -> list[DeadLetter]:
    """Leave out the dead letters of messages below the group's committed offset: with
    transactions those were committed with that offset already (a replay after a crash)."""
    return [
        (msg, reason)
        for msg, reason in dead
        if (msg.offset() or 0)
        >= committed.get(PartitionId(msg.topic() or "", msg.partition() or 0), 0)
    ]

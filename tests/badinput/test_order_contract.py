"""The schema against the contract (docs/services.md), without a broker: every message the
strategies build as invalid is refused by `parse_order` with a short reason."""

from __future__ import annotations

from hypothesis import example, given, settings
from orderpipeline.core.order import InvalidMessage, parse_order

from .strategies import invalid_message

VALID_TAIL = b'"currency":"USD","country":"DE","status":"CREATED","source":"t"'


@settings(max_examples=1500, deadline=None)
@given(message=invalid_message)
# A number where the contract has an ISO string was read as unix seconds (1970) and counted.
@example(
    message=(
        "wrong type",
        b'{"order_id":"o","customer_id":1,"amount":1.0,"created_at":2538,' + VALID_TAIL + b"}",
    )
)
@example(
    message=(
        "odd unicode",
        b'{"order_id":"o","customer_id":1,"amount":1.0,"created_at":"2026-11-27T03:40:00",'
        + VALID_TAIL
        + b"}",
    )
)
def test_every_invalid_message_is_refused_with_a_reason(message: tuple[str, bytes]) -> None:
    kind, raw = message
    try:
        order = parse_order(raw)
    except InvalidMessage as exc:
        assert exc.reason and len(exc.reason) < 200 and "\n" not in exc.reason
        return
    raise AssertionError(f"{kind} accepted as {order!r}")

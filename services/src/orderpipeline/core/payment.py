"""The payment record the payment service publishes and analytics stores, and its parser.

A payment on the `payments` topic is a JSON object, keyed by its order_id:
    {"order_id": "ord_01JD3...", "status": "PAID", "amount": 312.5, "country": "DE",
     "currency": "EUR", "paid_at": "2026-11-27T03:40:00.223Z"}
Analytics counts one payment per order_id. It needs only `order_id`, `status` and `amount`:
`country`, `currency` and `paid_at` are optional so that a payer that does not send them
(an older one, a test) is still counted; what is sent is checked like an order's fields.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from orderpipeline.core.order import Order, parse_message

PAID = "PAID"


class Payment(BaseModel):
    """A validated payment record. Immutable; extra fields are ignored like an order's."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    order_id: Annotated[str, Field(min_length=1, max_length=128)]
    status: Annotated[str, Field(min_length=1, max_length=32)]
    amount: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    country: Annotated[str | None, Field(pattern=r"^[A-Z]{2}$")] = None
    currency: Annotated[str | None, Field(pattern=r"^[A-Z]{3}$")] = None
    # The topics' timestamp form (core/order.py format_timestamp), kept as the text it was
    # sent as: analytics stores it, nothing computes with it.
    paid_at: Annotated[
        str | None, Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
    ] = None

    @classmethod
    def of(cls, order: Order, paid_at: str) -> Payment:
        """The payment of a validated order. Built without validating again (every field
        comes from the order's own validated fields, or is our own timestamp): this runs
        once per paid order."""
        return cls.model_construct(
            order_id=order.order_id,
            status=PAID,
            amount=order.amount,
            country=order.country,
            currency=order.currency,
            paid_at=paid_at,
        )

    def document(self) -> dict[str, Any]:
        """The fields that were set, in the wire form's order (what analytics stores: a
        record without `paid_at` is stored without it, not with a null)."""
        return self.model_dump(mode="json", exclude_unset=True)

    def document_json(self) -> bytes:
        """`document()` as JSON (pydantic's encoder: what analytics stores, not the wire form)."""
        # model_dump_json's bytes without its wrapper and decode/encode (once per payment).
        return _to_json(self, exclude_unset=True)

    def to_json(self) -> bytes:
        """The wire form: compact JSON, the fields in declaration order. Through `json` (not
        pydantic's serializer) so the bytes stay what the payment service always wrote
        (ASCII escapes, Python's float repr)."""
        return json.dumps(self.document(), separators=(",", ":")).encode()


_validate_json: Callable[[bytes], Payment] = Payment.__pydantic_validator__.validate_json
_to_json = Payment.__pydantic_serializer__.to_json


def parse_payment(raw: bytes | None, max_bytes: int) -> Payment:
    """Parse and validate one message value of the payments topic.

    Raises InvalidMessage(reason) for: no value, oversized payload, not JSON, not an object,
    a missing or empty order_id, status or amount, wrong types, malformed optional fields.
    """
    return parse_message(raw, max_bytes, _validate_json)

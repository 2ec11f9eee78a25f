"""Hypothesis strategies for messages on `orders` that are invalid by construction, per the
contract of docs/services.md ("An order is valid when ..."), written without the services'
schema code so the test does not grade the parser with itself."""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

FIELDS = ("order_id", "customer_id", "amount", "currency", "country", "status", "created_at")
MAX_BYTES = 65536  # ORDER_MAX_BYTES' default

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
NOT_STRING = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.lists(json_scalars)
)
NOT_NUMBER = st.one_of(
    st.none(), st.booleans(), st.text(max_size=10), st.lists(json_scalars, max_size=3)
)
# Per field, a JSON value of a type the contract does not allow (no "4821" for a number).
WRONG_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "order_id": NOT_STRING,
    "customer_id": st.one_of(
        NOT_NUMBER, st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f % 1 != 0)
    ),
    "amount": NOT_NUMBER,
    "currency": NOT_STRING,
    "country": NOT_STRING,
    "status": NOT_STRING,
    "created_at": NOT_STRING,
}
# Letters that look like codes but are not ASCII A-Z: odd unicode where the contract is strict.
ODD_LETTERS = st.sampled_from(
    # Latin-1 and Cyrillic capitals, CJK, full-width "USD", zero-width space, BOM, regional
    # indicators, a combining accent.
    [
        *"\u00c4\u00d6\u00dc\u00c9\u00df\u00c6\u0416\u042f\u03a9\u6771\u4eac",
        *"\uff35\uff33\uff24\u200b\ufeff\U0001f1e9\U0001f1ea\u0301",
    ]
)


@st.composite
def valid_order(draw: st.DrawFn, order_id: str | None = None) -> dict[str, Any]:
    """A valid order (the producer's shape), with a fresh id unless one is given."""
    created = datetime.now(UTC) - timedelta(seconds=draw(st.integers(0, 3000)))
    return {
        "order_id": order_id or "ord_bad" + draw(st.uuids()).hex,
        "customer_id": draw(st.integers(1000, 9999)),
        "amount": draw(st.integers(0, 60_000)) / 100,
        "currency": "USD",
        "country": draw(st.sampled_from(["US", "CA", "DE", "IN", "GB", "FR", "CN", "BR"])),
        "status": draw(st.sampled_from(["CREATED", "CONFIRMED", "CANCELLED"])),
        "created_at": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "source": "badinput-test",
    }


def _dump(value: Any) -> bytes:
    # allow_nan: the JSON tokens NaN / Infinity are exactly what some producers emit.
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def missing_key(draw: st.DrawFn) -> tuple[str, bytes]:
    order = draw(valid_order())
    del order[draw(st.sampled_from(FIELDS))]
    return "missing key", _dump(order)


@st.composite
def wrong_type(draw: st.DrawFn) -> tuple[str, bytes]:
    order = draw(valid_order())
    name = draw(st.sampled_from(FIELDS))
    order[name] = draw(WRONG_TYPE[name])
    return "wrong type", _dump(order)


@st.composite
def bad_amount(draw: st.DrawFn) -> tuple[str, bytes]:
    order = draw(valid_order())
    order["amount"] = draw(
        st.one_of(
            st.floats(max_value=-0.01, allow_infinity=False, allow_nan=False),
            st.integers(max_value=-1),
            st.sampled_from([float("nan"), float("inf"), float("-inf")]),
        )
    )
    text = _dump(order)
    if draw(st.booleans()):
        text = text.replace(b'"amount": ' + _dump(order["amount"]), b'"amount": 1e999')
    return "bad amount", text


@st.composite
def odd_unicode(draw: st.DrawFn) -> tuple[str, bytes]:
    order = draw(valid_order())
    name = draw(st.sampled_from(["currency", "country", "created_at"]))
    if name == "created_at":
        # Full-width digits and a naive time: both outside the contract's timestamp.
        order[name] = draw(
            st.sampled_from(["\uff12\uff10\uff12\uff16-11-27T03:40:00Z", "2026-11-27T03:40:00"])
        )
    else:
        size = 3 if name == "currency" else 2
        order[name] = "".join(draw(st.lists(ODD_LETTERS, min_size=size, max_size=size)))
    return "odd unicode", _dump(order)


@st.composite
def huge(draw: st.DrawFn) -> tuple[str, bytes]:
    order = draw(valid_order())
    order["padding"] = "x" * draw(st.integers(MAX_BYTES, MAX_BYTES + 200_000))
    return "huge", _dump(order)


@st.composite
def not_json(draw: st.DrawFn) -> tuple[str, bytes]:
    order = _dump(draw(valid_order()))
    return "not JSON", draw(
        st.one_of(
            st.binary(max_size=300).filter(lambda b: not _is_json(b)),
            st.integers(1, len(order) - 1).map(lambda n: order[:n]),  # truncated
            st.text(alphabet=string.printable, max_size=50)
            .map(str.encode)
            .filter(lambda b: not _is_json(b)),
        )
    )


@st.composite
def not_an_object(draw: st.DrawFn) -> tuple[str, bytes]:
    return "not an object", _dump(draw(st.one_of(json_scalars, st.lists(json_scalars))))


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


invalid_message = st.one_of(
    missing_key(), wrong_type(), bad_amount(), odd_unicode(), huge(), not_json(), not_an_object()
)

"""What a person reads on the dashboard, by the page's own test ids: for the browser tests,
the real-node journey, benchmarks and screenshots."""

from __future__ import annotations

from typing import Protocol

# The KPI cards (data-testid) and the `totals` field of /api/analytics each one shows.
KPI_FIELDS = {
    "kpi-total-orders": "orders",
    "kpi-total-sales": "sales",
    "kpi-average-order-value": "average_order_value",
    "kpi-fraud-alerts": "fraud_alerts",
    "kpi-payments": "payments",
}
# For evaluate_all on the `order-row` elements: their order ids, top to bottom.
ROW_IDS = "rows => rows.map(row => row.dataset.orderId)"
# The page says it receives live data.
LIVE = '[data-testid="connection-state"][data-state="live"]'


class _Locator(Protocol):
    def get_attribute(self, name: str) -> str | None: ...


class _Page(Protocol):
    def get_by_test_id(self, test_id: str) -> _Locator: ...


def kpi_values(page: _Page) -> dict[str, float]:
    """Each KPI card's value (its data-value), by the API field it shows."""
    values = {}
    for test_id, field in KPI_FIELDS.items():
        raw = page.get_by_test_id(test_id).get_attribute("data-value")
        if raw is None:
            raise AssertionError(f"KPI card {test_id} has no data-value")
        values[field] = float(raw)
    return values

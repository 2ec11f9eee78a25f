"""Order acknowledged by Kafka -> its row in the dashboard, in headless Chromium.

The number a user feels. The page records when each order row first appears (its own
clock, the host's); the producer records each broker acknowledgement (same clock). Shared
by the local-stack and the real-node benchmarks, which differ only in how they reach the
page and where the orders are produced.
"""

from __future__ import annotations

from collections.abc import Callable

from devinfra.chromium import CHROMIUM_ARGS
from devinfra.procs import wait_for
from devinfra.toolchain import Toolchain
from playwright.sync_api import sync_playwright

ORDERS = 50
INTERVAL_S = 0.2
TEMPLATE = {
    "customer_id": 7,
    "amount": 42.5,
    "currency": "USD",
    "country": "US",
    "status": "CREATED",
    "source": "bench-dashboard",
}
# Records when each order row first appears, in the page's own clock.
WATCH_ROWS = """() => {
  window.__seen = {};
  const note = () => {
    for (const row of document.querySelectorAll('[data-testid="order-row"]')) {
      const id = row.dataset.orderId;
      if (id && !(id in window.__seen)) window.__seen[id] = Date.now();
    }
  };
  note();
  new MutationObserver(note).observe(document.body, {
    subtree: true, childList: true, attributes: true, attributeFilter: ["data-order-id"],
  });
}"""

# (count, interval s) -> {order id: broker ack time, s since the epoch}
Produce = Callable[[int, float], dict[str, float]]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


def order_to_row_ms(url: str, produce: Produce, extra_args: tuple[str, ...] = ()) -> list[float]:
    """Milliseconds from the broker's ack to the row in Chromium, one per order."""
    executable = str(Toolchain.load().chromium)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=[*CHROMIUM_ARGS, *extra_args]
        )
        try:
            page = browser.new_page()
            page.goto(url)
            page.wait_for_selector('[data-testid="connection-state"][data-state="live"]')
            page.evaluate(WATCH_ROWS)
            acked = produce(ORDERS, INTERVAL_S)
            wait_for(
                lambda: set(acked) <= set(page.evaluate("Object.keys(window.__seen)")),
                timeout=60,
                what=f"{ORDERS} orders in the page",
            )
            seen: dict[str, float] = page.evaluate("window.__seen")
        finally:
            browser.close()
    if len(acked) < ORDERS:
        raise RuntimeError(f"only {len(acked)} of {ORDERS} orders acknowledged by the broker")
    return [seen[order_id] - at * 1000 for order_id, at in acked.items()]

import type { Analytics, Order } from "../api/types";

export function order(id: string, overrides: Partial<Order> = {}): Order {
  return {
    order_id: id,
    customer_id: 4821,
    amount: 100,
    currency: "USD",
    country: "US",
    status: "CREATED",
    created_at: "2026-11-27T03:40:00.123Z",
    source: "order-service",
    ...overrides,
  };
}

/**
 * A snapshot whose totals deliberately differ from the sums of its rows: the backend
 * aggregates every order, the rows are only the latest few.
 */
export function analytics(overrides: Partial<Analytics> = {}): Analytics {
  return {
    status: "ok",
    orders: [
      order("ord_03", { amount: 412.5, country: "DE" }),
      order("ord_02", { amount: 80, country: "CA" }),
      order("ord_01", { amount: 20.25, country: "US" }),
    ],
    totals: {
      orders: 1234,
      sales: 98765.43,
      average_order_value: 80.04,
      fraud_alerts: 17,
      payments: 1200,
    },
    by_country: [
      { country: "US", orders: 700, sales: 50000 },
      { country: "DE", orders: 534, sales: 48765.43 },
    ],
    by_status: [{ status: "CREATED", orders: 1234 }],
    per_minute: [
      { minute: "2026-11-27T03:39:00Z", orders: 30, sales: 2400 },
      { minute: "2026-11-27T03:40:00Z", orders: 42, sales: 3300 },
    ],
    latest_fraud_alerts: [
      {
        order_id: "ord_03",
        reason: "HIGH_AMOUNT_RISKY_COUNTRY",
        amount: 412.5,
        country: "DE",
        created_at: "2026-11-27T03:40:00.123Z",
      },
    ],
    updated_at: "2026-11-27T03:40:01Z",
    ...overrides,
  };
}

export function emptyAnalytics(): Analytics {
  return analytics({
    orders: [],
    totals: { orders: 0, sales: 0, average_order_value: 0, fraud_alerts: 0, payments: 0 },
    by_country: [],
    by_status: [],
    per_minute: [],
    latest_fraud_alerts: [],
  });
}

import type {
  Analytics,
  CountryBucket,
  FraudAlert,
  MinuteBucket,
  Order,
  StatusBucket,
  Totals,
} from "./types";

// The dashboard trusts the backend's numbers but not its shape: a document that is not
// an analytics snapshot (an HTML error page from a proxy, a half-deployed backend) must
// become a readable error instead of a blank page.
export class InvalidAnalytics extends Error {
  constructor(what: string) {
    super(`The backend sent an unexpected analytics document: ${what}`);
    this.name = "InvalidAnalytics";
  }
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function num(obj: Json, key: string, where: string): number {
  const value = obj[key];
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new InvalidAnalytics(`${where}.${key} is not a number`);
  }
  return value;
}

function str(obj: Json, key: string, where: string): string {
  const value = obj[key];
  if (typeof value !== "string") {
    throw new InvalidAnalytics(`${where}.${key} is not a string`);
  }
  return value;
}

function list<T>(obj: Json, key: string, item: (entry: Json, where: string) => T): T[] {
  const value = obj[key] ?? [];
  if (!Array.isArray(value)) {
    throw new InvalidAnalytics(`${key} is not a list`);
  }
  return value.map((entry: unknown, index) => {
    const where = `${key}[${index}]`;
    if (!isObject(entry)) throw new InvalidAnalytics(`${where} is not an object`);
    return item(entry, where);
  });
}

function order(o: Json, where: string): Order {
  const parsed: Order = {
    order_id: str(o, "order_id", where),
    customer_id: num(o, "customer_id", where),
    amount: num(o, "amount", where),
    currency: typeof o.currency === "string" ? o.currency : "USD",
    country: str(o, "country", where),
    status: typeof o.status === "string" ? o.status : "CREATED",
    created_at: str(o, "created_at", where),
  };
  if (typeof o.source === "string") parsed.source = o.source;
  return parsed;
}

function totals(doc: Json): Totals {
  const t = doc.totals;
  if (!isObject(t)) throw new InvalidAnalytics("totals is missing");
  return {
    orders: num(t, "orders", "totals"),
    sales: num(t, "sales", "totals"),
    average_order_value: num(t, "average_order_value", "totals"),
    fraud_alerts: num(t, "fraud_alerts", "totals"),
    payments: num(t, "payments", "totals"),
  };
}

const country = (c: Json, where: string): CountryBucket => ({
  country: str(c, "country", where),
  orders: num(c, "orders", where),
  sales: num(c, "sales", where),
});

const status = (s: Json, where: string): StatusBucket => ({
  status: str(s, "status", where),
  orders: num(s, "orders", where),
});

const minute = (m: Json, where: string): MinuteBucket => ({
  minute: str(m, "minute", where),
  orders: num(m, "orders", where),
  sales: num(m, "sales", where),
});

const alert = (a: Json, where: string): FraudAlert => ({
  order_id: str(a, "order_id", where),
  reason: str(a, "reason", where),
  amount: num(a, "amount", where),
  country: str(a, "country", where),
  created_at: str(a, "created_at", where),
});

/** Checks a decoded `/api/analytics` document and returns it typed. */
export function parseAnalytics(doc: unknown): Analytics {
  if (!isObject(doc)) throw new InvalidAnalytics("not a JSON object");
  return {
    status: typeof doc.status === "string" ? doc.status : "ok",
    orders: list(doc, "orders", order),
    totals: totals(doc),
    by_country: list(doc, "by_country", country),
    by_status: list(doc, "by_status", status),
    per_minute: list(doc, "per_minute", minute),
    latest_fraud_alerts: list(doc, "latest_fraud_alerts", alert),
    updated_at: typeof doc.updated_at === "string" ? doc.updated_at : null,
  };
}

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
// become a readable error instead of a blank page. Each check below is typed by the
// generated API types, so a field added to or removed from the contract fails `tsc` here
// until its check follows.
export class InvalidAnalytics extends Error {
  constructor(what: string) {
    super(`The backend sent an unexpected analytics document: ${what}`);
    this.name = "InvalidAnalytics";
  }
}

/** Returns `value` typed when it has the expected shape; throws InvalidAnalytics naming `where`. */
type Check<T> = (value: unknown, where: string) => T;

/** One check per field of T, every field: the contract has no optional fields. */
type Fields<T> = { [K in keyof T]-?: Check<T[K]> };

const num: Check<number> = (value, where) => {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new InvalidAnalytics(`${where} is not a number`);
  }
  return value;
};

const str: Check<string> = (value, where) => {
  if (typeof value !== "string") throw new InvalidAnalytics(`${where} is not a string`);
  return value;
};

function literal<T extends string>(expected: T): Check<T> {
  return (value, where) => {
    if (value !== expected) throw new InvalidAnalytics(`${where} is not "${expected}"`);
    return expected;
  };
}

function list<T>(item: Check<T>): Check<T[]> {
  return (value, where) => {
    if (!Array.isArray(value)) throw new InvalidAnalytics(`${where} is not a list`);
    return value.map((entry: unknown, index) => item(entry, `${where}[${index}]`));
  };
}

function object<T>(fields: Fields<T>): Check<T> {
  return (value, where) => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new InvalidAnalytics(`${where || "the document"} is not a JSON object`);
    }
    const source = value as Record<string, unknown>;
    const checked: Partial<T> = {};
    for (const key of Object.keys(fields) as (keyof T & string)[]) {
      checked[key] = fields[key](source[key], where ? `${where}.${key}` : key);
    }
    // Every key of T was checked above (Fields<T> lists them all).
    return checked as T;
  };
}

const order = object<Order>({
  order_id: str,
  customer_id: num,
  amount: num,
  currency: str,
  country: str,
  status: str,
  created_at: str,
  source: str,
});

const totals = object<Totals>({
  orders: num,
  sales: num,
  average_order_value: num,
  fraud_alerts: num,
  payments: num,
});

const country = object<CountryBucket>({ country: str, orders: num, sales: num });

const status = object<StatusBucket>({ status: str, orders: num });

const minute = object<MinuteBucket>({ minute: str, orders: num, sales: num });

const alert = object<FraudAlert>({
  order_id: str,
  reason: str,
  amount: num,
  country: str,
  created_at: str,
});

const analytics = object<Analytics>({
  status: literal("ok"),
  orders: list(order),
  totals,
  by_country: list(country),
  by_status: list(status),
  per_minute: list(minute),
  latest_fraud_alerts: list(alert),
  updated_at: str,
});

/** Checks a decoded `/api/analytics` document and returns it typed. */
export function parseAnalytics(doc: unknown): Analytics {
  return analytics(doc, "");
}

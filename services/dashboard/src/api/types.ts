// The backend's `/api/analytics` document (docs/contracts.md). The stream `/api/stream`
// sends the same document as the data of each `analytics` event.

export interface Order {
  order_id: string;
  customer_id: number;
  amount: number;
  currency: string;
  country: string;
  status: string;
  created_at: string;
  source?: string;
}

export interface Totals {
  orders: number;
  sales: number;
  average_order_value: number;
  fraud_alerts: number;
  payments: number;
}

export interface CountryBucket {
  country: string;
  orders: number;
  sales: number;
}

export interface StatusBucket {
  status: string;
  orders: number;
}

export interface MinuteBucket {
  minute: string;
  orders: number;
  sales: number;
}

export interface FraudAlert {
  order_id: string;
  reason: string;
  amount: number;
  country: string;
  created_at: string;
}

export interface Analytics {
  status: string;
  orders: Order[];
  totals: Totals;
  by_country: CountryBucket[];
  by_status: StatusBucket[];
  per_minute: MinuteBucket[];
  latest_fraud_alerts: FraudAlert[];
  updated_at: string | null;
}

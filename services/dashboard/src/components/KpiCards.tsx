import type { Totals } from "../api/types";
import type { Formatters } from "../format/format";

interface Props {
  totals: Totals;
  currency: string;
  fmt: Formatters;
}

interface Kpi {
  id: string;
  label: string;
  value: number;
  text: string;
  note?: string;
}

function share(part: number, whole: number, fmt: Formatters): string | undefined {
  if (whole <= 0) return undefined;
  return `${fmt.count(Math.round((part / whole) * 100))}% of orders`;
}

/** The headline numbers: server-side aggregates over every order, never sums of the rows. */
export function KpiCards({ totals, currency, fmt }: Props) {
  const kpis: Kpi[] = [
    {
      id: "total-orders",
      label: "Total orders",
      value: totals.orders,
      text: fmt.count(totals.orders),
      note: "All time",
    },
    {
      id: "total-sales",
      label: "Total sales",
      value: totals.sales,
      text: fmt.money(totals.sales, currency),
      note: `All time, in ${currency}`,
    },
    {
      id: "average-order-value",
      label: "Average order value",
      value: totals.average_order_value,
      text: fmt.money(totals.average_order_value, currency),
      note: "Per order",
    },
    {
      id: "fraud-alerts",
      label: "Fraud alerts",
      value: totals.fraud_alerts,
      text: fmt.count(totals.fraud_alerts),
      ...optionalNote(share(totals.fraud_alerts, totals.orders, fmt)),
    },
    {
      id: "payments",
      label: "Payments processed",
      value: totals.payments,
      text: fmt.count(totals.payments),
      ...optionalNote(share(totals.payments, totals.orders, fmt)),
    },
  ];
  return (
    <section aria-labelledby="kpi-heading">
      <h2 id="kpi-heading" className="sr-only">
        Key figures
      </h2>
      <dl className="kpis">
        {kpis.map((kpi) => (
          <div key={kpi.id} className={`kpi kpi--${kpi.id}`}>
            <dt className="kpi__label">{kpi.label}</dt>
            <dd className="kpi__value" data-testid={`kpi-${kpi.id}`} data-value={kpi.value}>
              {kpi.text}
            </dd>
            {kpi.note ? <dd className="kpi__note">{kpi.note}</dd> : null}
          </div>
        ))}
      </dl>
    </section>
  );
}

// exactOptionalPropertyTypes: leave the key out rather than set it to undefined.
function optionalNote(note: string | undefined): { note?: string } {
  return note === undefined ? {} : { note };
}

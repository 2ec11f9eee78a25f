import type { FraudAlert } from "../api/types";
import { describeReason, type Formatters } from "../format/format";

interface Props {
  alerts: FraudAlert[];
  currency: string;
  fmt: Formatters;
}

/** The latest orders the fraud service flagged, with the rule that flagged them. */
export function FraudAlerts({ alerts, currency, fmt }: Props) {
  return (
    <section className="card alerts" aria-labelledby="alerts-title">
      <header className="card__header">
        <h2 id="alerts-title" className="card__title">
          Latest fraud alerts
        </h2>
        <p className="card__subtitle">Orders flagged by the fraud rule</p>
      </header>
      {alerts.length === 0 ? (
        <p className="empty">No fraud alerts.</p>
      ) : (
        // Up to 50 alerts: a focusable scroll region, like the orders table.
        <div className="alerts-scroll" role="region" aria-label="Fraud alerts list" tabIndex={0}>
          <ol className="alert-list">
            {alerts.map((alert) => (
              <li
                key={alert.order_id}
                className="alert-item"
                data-testid="fraud-alert"
                data-order-id={alert.order_id}
              >
                <div className="alert-item__main">
                  <p className="alert-item__reason" title={alert.reason} data-reason={alert.reason}>
                    {describeReason(alert.reason)}
                  </p>
                  <p className="alert-item__meta mono">{alert.order_id}</p>
                  <p className="alert-item__meta">
                    <span>{fmt.country(alert.country)}</span>
                    <span aria-hidden="true"> · </span>
                    <time dateTime={alert.created_at}>{fmt.time(alert.created_at)}</time>
                  </p>
                </div>
                <p className="alert-item__amount">{fmt.money(alert.amount, currency)}</p>
              </li>
            ))}
          </ol>
        </div>
      )}
    </section>
  );
}

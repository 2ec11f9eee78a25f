import { useMemo } from "react";
import { displayCurrency, makeFormatters } from "../format/format";
import type { FeedSnapshot } from "../live/feed";
import { ConnectionStatus } from "./ConnectionStatus";
import { FraudAlerts } from "./FraudAlerts";
import { KpiCards } from "./KpiCards";
import { OrdersPerMinuteChart } from "./OrdersPerMinuteChart";
import { OrdersTable } from "./OrdersTable";
import { SalesByCountryChart } from "./SalesByCountryChart";

interface Props {
  snapshot: FeedSnapshot;
  /** BCP 47 tag; undefined = the browser's locale. */
  locale?: string | undefined;
  onReload?: (() => void) | undefined;
}

/** The whole page for one feed snapshot: a pure view, so every state is testable. */
export function Dashboard({ snapshot, locale, onReload }: Props) {
  const fmt = useMemo(() => makeFormatters(locale), [locale]);
  const { data, connection, connecting, transport, receivedAt, error } = snapshot;
  const updatedIso = data?.updated_at ?? receivedAt?.toISOString() ?? null;
  const lastUpdate = updatedIso ? { iso: updatedIso, label: fmt.time(updatedIso) } : null;

  return (
    <div className="app">
      <header className="topbar">
        <div className="topbar__inner">
          <div className="brand">
            <svg className="brand__logo" viewBox="0 0 32 32" aria-hidden="true">
              <rect width="32" height="32" rx="7" />
              <path d="M8 21l5-6 4 3 7-9" />
            </svg>
            <div>
              <h1 className="brand__title">OrderPipeline</h1>
              <p className="brand__subtitle">Live orders, sales and fraud</p>
            </div>
          </div>
          <ConnectionStatus
            connection={connection}
            connecting={connecting}
            transport={transport}
            lastUpdate={lastUpdate}
          />
        </div>
      </header>

      <main className="content" aria-busy={data === null && connecting}>
        {data && connection !== "live" && error ? (
          <p className="banner" data-testid="stale-banner">
            Showing the last data received. {error}
          </p>
        ) : null}
        {data ? (
          <Body snapshot={{ ...snapshot, data }} fmt={fmt} />
        ) : connecting ? (
          <Loading />
        ) : (
          <Failure message={error} onReload={onReload} />
        )}
      </main>

      <footer className="footer">
        Figures are aggregates over all orders, computed by the backend and pushed live.
      </footer>
    </div>
  );
}

function Body({
  snapshot,
  fmt,
}: {
  snapshot: FeedSnapshot & { data: NonNullable<FeedSnapshot["data"]> };
  fmt: ReturnType<typeof makeFormatters>;
}) {
  const { data } = snapshot;
  const currency = displayCurrency(data.orders);
  return (
    <>
      <KpiCards totals={data.totals} currency={currency} fmt={fmt} />
      <div className="grid grid--charts">
        <SalesByCountryChart buckets={data.by_country} currency={currency} fmt={fmt} />
        <OrdersPerMinuteChart buckets={data.per_minute} fmt={fmt} />
      </div>
      <div className="grid grid--lists">
        <OrdersTable orders={data.orders} fmt={fmt} />
        <FraudAlerts alerts={data.latest_fraud_alerts} currency={currency} fmt={fmt} />
      </div>
    </>
  );
}

function Loading() {
  return (
    <div className="loading" data-testid="loading">
      <p className="sr-only">Loading the dashboard…</p>
      <div className="kpis" aria-hidden="true">
        {Array.from({ length: 5 }, (_, i) => (
          <div key={i} className="kpi skeleton" />
        ))}
      </div>
      <div className="grid grid--charts" aria-hidden="true">
        <div className="card skeleton skeleton--chart" />
        <div className="card skeleton skeleton--chart" />
      </div>
    </div>
  );
}

function Failure({ message, onReload }: { message: string | null; onReload?: (() => void) | undefined }) {
  return (
    <section className="card failure" data-testid="error-state" aria-labelledby="failure-title">
      <h2 id="failure-title" className="card__title">
        The backend is unavailable
      </h2>
      <p>{message ?? "No data could be loaded."}</p>
      <p className="muted">
        The page keeps retrying every second and updates by itself when the backend is back.
        Check that the backend is running (<code>make status</code>).
      </p>
      {onReload ? (
        <button type="button" className="button" onClick={onReload}>
          Reload now
        </button>
      ) : null}
    </section>
  );
}

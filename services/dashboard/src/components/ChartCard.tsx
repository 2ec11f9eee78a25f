import type { ReactNode } from "react";

interface Props {
  id: string;
  title: string;
  description: string;
  empty: boolean;
  emptyText: string;
  /** The same numbers as a table, for screen readers. */
  table: ReactNode;
  children: ReactNode;
}

/** A titled card around a chart, with an accessible table of the plotted data. */
export function ChartCard({ id, title, description, empty, emptyText, table, children }: Props) {
  return (
    <section className="card chart" aria-labelledby={`${id}-title`}>
      <header className="card__header">
        <h2 id={`${id}-title`} className="card__title">
          {title}
        </h2>
        <p className="card__subtitle">{description}</p>
      </header>
      {empty ? (
        <p className="empty">{emptyText}</p>
      ) : (
        <>
          {/* The plot is for the eye; assistive tech reads the table below instead, and the
              plot takes no keyboard focus (recharts' accessibility layer is turned off). */}
          <div className="chart__plot" aria-hidden="true" data-testid={`${id}-chart`}>
            {children}
          </div>
          <div className="sr-only">{table}</div>
        </>
      )}
    </section>
  );
}

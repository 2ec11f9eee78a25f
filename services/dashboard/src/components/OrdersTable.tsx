import type { Order } from "../api/types";
import type { Formatters } from "../format/format";
import { useFreshIds } from "./useFreshIds";

interface Props {
  orders: Order[];
  fmt: Formatters;
}

/** The latest orders as the backend lists them: newest first. */
export function OrdersTable({ orders, fmt }: Props) {
  const fresh = useFreshIds(orders.map((order) => order.order_id));
  return (
    <section className="card orders" aria-labelledby="orders-title">
      <header className="card__header">
        <h2 id="orders-title" className="card__title">
          Latest orders
        </h2>
        <p className="card__subtitle">Newest first · {fmt.count(orders.length)} shown</p>
      </header>
      {orders.length === 0 ? (
        <p className="empty">No orders yet. They appear here as soon as the producer sends them.</p>
      ) : (
        // A focusable scroll region: on a phone the table scrolls sideways from the keyboard too.
        <div className="table-scroll" role="region" aria-label="Latest orders table" tabIndex={0}>
          {/* Explicit roles: on phones the rows are laid out as grids (styles.css), and some
              browsers drop table semantics from restyled rows unless the roles are stated. */}
          <table className="table" role="table">
            <caption className="sr-only">Latest orders, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Order</th>
                <th scope="col">Time</th>
                <th scope="col">Customer</th>
                <th scope="col">Country</th>
                <th scope="col" className="num">
                  Amount
                </th>
                <th scope="col">Status</th>
              </tr>
            </thead>
            <tbody>
              {orders.map((order) => (
                <tr
                  key={order.order_id}
                  role="row"
                  data-testid="order-row"
                  data-order-id={order.order_id}
                  className={fresh.has(order.order_id) ? "row--new" : undefined}
                >
                  <td className="c-id mono" role="cell">
                    {order.order_id}
                  </td>
                  <td className="c-time" role="cell">
                    <time dateTime={order.created_at}>{fmt.time(order.created_at)}</time>
                  </td>
                  <td className="c-customer mono" role="cell">
                    {order.customer_id}
                  </td>
                  <td className="c-country" role="cell">
                    <abbr title={fmt.country(order.country)}>{order.country}</abbr>
                  </td>
                  <td className="c-amount num" role="cell">
                    {fmt.money(order.amount, order.currency)}
                  </td>
                  <td className="c-status" role="cell">
                    <span className={`status status--${order.status.toLowerCase()}`}>
                      {order.status}
                    </span>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

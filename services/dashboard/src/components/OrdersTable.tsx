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
          <table className="table">
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
                  data-testid="order-row"
                  data-order-id={order.order_id}
                  className={fresh.has(order.order_id) ? "row--new" : undefined}
                >
                  <td className="mono">{order.order_id}</td>
                  <td>
                    <time dateTime={order.created_at}>{fmt.time(order.created_at)}</time>
                  </td>
                  <td className="mono">{order.customer_id}</td>
                  <td>
                    <abbr title={fmt.country(order.country)}>{order.country}</abbr>
                  </td>
                  <td className="num">{fmt.money(order.amount, order.currency)}</td>
                  <td>
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

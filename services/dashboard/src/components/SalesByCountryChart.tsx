import { Bar, BarChart, CartesianGrid, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import type { CountryBucket } from "../api/types";
import type { Formatters } from "../format/format";
import { ChartCard } from "./ChartCard";
import { chartTheme } from "./chartTheme";

interface Props {
  buckets: CountryBucket[];
  currency: string;
  fmt: Formatters;
}

const BAR_HEIGHT = 30;

/** Sales per country, largest first, as horizontal bars (they stay readable at 360 px). */
export function SalesByCountryChart({ buckets, currency, fmt }: Props) {
  const rows = [...buckets].sort((a, b) => b.sales - a.sales);
  const height = Math.max(160, rows.length * BAR_HEIGHT + 40);
  return (
    <ChartCard
      id="sales-by-country"
      title="Sales by country"
      description="All orders, by the customer's country"
      empty={rows.length === 0}
      emptyText="No sales yet."
      table={
        <table>
          <caption>Sales by country</caption>
          <thead>
            <tr>
              <th scope="col">Country</th>
              <th scope="col">Orders</th>
              <th scope="col">Sales</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={row.country}>
                <th scope="row">{fmt.country(row.country)}</th>
                <td>{fmt.count(row.orders)}</td>
                <td>{fmt.money(row.sales, currency)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      }
    >
      <ResponsiveContainer width="100%" height={height} initialDimension={{ width: 480, height }}>
        <BarChart
          data={rows}
          layout="vertical"
          margin={{ top: 4, right: 16, bottom: 4, left: 0 }}
          accessibilityLayer={false}
        >
          <CartesianGrid horizontal={false} stroke={chartTheme.grid} />
          <XAxis
            type="number"
            tickFormatter={(value: number) => fmt.compactMoney(value, currency)}
            tick={{ fill: chartTheme.muted, fontSize: 12 }}
            axisLine={false}
            tickLine={false}
          />
          <YAxis
            type="category"
            dataKey="country"
            width={44}
            tick={{ fill: chartTheme.text, fontSize: 12 }}
            axisLine={false}
            tickLine={false}
          />
          <Tooltip
            cursor={{ fill: chartTheme.hover }}
            formatter={(value) => [fmt.money(Number(value), currency), "Sales"]}
            labelFormatter={(label) => fmt.country(String(label))}
          />
          <Bar dataKey="sales" name="Sales" fill={chartTheme.accent} radius={[0, 4, 4, 0]} isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </ChartCard>
  );
}

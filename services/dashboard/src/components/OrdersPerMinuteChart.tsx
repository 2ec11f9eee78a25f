import { Area, AreaChart, CartesianGrid, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import type { MinuteBucket } from "../api/types";
import type { Formatters } from "../format/format";
import { ChartCard } from "./ChartCard";
import { chartTheme } from "./chartTheme";

interface Props {
  buckets: MinuteBucket[];
  fmt: Formatters;
}

const HEIGHT = 280;

/** Orders per minute over the last hour, oldest first as the backend sends them. */
export function OrdersPerMinuteChart({ buckets, fmt }: Props) {
  const rows = buckets.map((bucket) => ({ ...bucket, label: fmt.minute(bucket.minute) }));
  return (
    <ChartCard
      id="orders-per-minute"
      title="Orders per minute"
      description="The last 60 minutes"
      empty={rows.length === 0}
      emptyText="No orders in the last hour."
      table={
        <table>
          <caption>Orders per minute</caption>
          <thead>
            <tr>
              <th scope="col">Minute</th>
              <th scope="col">Orders</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={row.minute}>
                <th scope="row">{row.label}</th>
                <td>{fmt.count(row.orders)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      }
    >
      <ResponsiveContainer width="100%" height={HEIGHT} initialDimension={{ width: 480, height: HEIGHT }}>
        <AreaChart
          data={rows}
          margin={{ top: 8, right: 16, bottom: 4, left: 0 }}
          accessibilityLayer={false}
        >
          <defs>
            <linearGradient id="opm-fill" x1="0" y1="0" x2="0" y2="1">
              <stop offset="0%" stopColor={chartTheme.accent} stopOpacity={0.35} />
              <stop offset="100%" stopColor={chartTheme.accent} stopOpacity={0.02} />
            </linearGradient>
          </defs>
          <CartesianGrid vertical={false} stroke={chartTheme.grid} />
          <XAxis
            dataKey="label"
            tick={{ fill: chartTheme.muted, fontSize: 12 }}
            axisLine={false}
            tickLine={false}
            minTickGap={24}
          />
          <YAxis
            allowDecimals={false}
            width={40}
            tickFormatter={(value: number) => fmt.count(value)}
            tick={{ fill: chartTheme.muted, fontSize: 12 }}
            axisLine={false}
            tickLine={false}
          />
          <Tooltip formatter={(value) => [fmt.count(Number(value)), "Orders"]} />
          <Area
            type="monotone"
            dataKey="orders"
            name="Orders"
            stroke={chartTheme.accent}
            strokeWidth={2}
            fill="url(#opm-fill)"
            isAnimationActive={false}
          />
        </AreaChart>
      </ResponsiveContainer>
    </ChartCard>
  );
}

import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import type { FeedSnapshot } from "../live/feed";
import { analytics, emptyAnalytics, order } from "../test/fixtures";
import { Dashboard } from "./Dashboard";

function snapshot(overrides: Partial<FeedSnapshot> = {}): FeedSnapshot {
  return {
    data: analytics(),
    connection: "live",
    transport: "push",
    receivedAt: new Date("2026-11-27T03:40:01Z"),
    error: null,
    connecting: false,
    ...overrides,
  };
}

const renderDashboard = (s: FeedSnapshot, onReload?: () => void) =>
  render(<Dashboard snapshot={s} locale="en-US" onReload={onReload} />);

describe("Dashboard", () => {
  it("shows the server's totals in the KPI cards, not sums of the rows shown", () => {
    renderDashboard(snapshot());
    expect(screen.getByTestId("kpi-total-orders")).toHaveTextContent("1,234");
    expect(screen.getByTestId("kpi-total-sales")).toHaveTextContent("$98,765.43");
    expect(screen.getByTestId("kpi-average-order-value")).toHaveTextContent("$80.04");
    expect(screen.getByTestId("kpi-fraud-alerts")).toHaveTextContent("17");
    expect(screen.getByTestId("kpi-payments")).toHaveTextContent("1,200");
    // The raw numbers are kept for machines (the browser tests compare them with the API).
    expect(screen.getByTestId("kpi-total-sales")).toHaveAttribute("data-value", "98765.43");
  });

  it("lists the latest orders in the order the backend sent them, newest first", () => {
    renderDashboard(snapshot());
    const rows = screen.getAllByTestId("order-row");
    expect(rows.map((row) => row.dataset.orderId)).toEqual(["ord_03", "ord_02", "ord_01"]);
    expect(within(rows[0]!).getByText("$412.50")).toBeInTheDocument();
    expect(within(rows[0]!).getByTitle("Germany")).toHaveTextContent("DE");
  });

  it("lists fraud alerts with their reason", () => {
    renderDashboard(snapshot());
    const alert = screen.getByTestId("fraud-alert");
    expect(alert).toHaveAttribute("data-order-id", "ord_03");
    expect(alert).toHaveTextContent("High amount, untrusted country");
    expect(within(alert).getByTitle("HIGH_AMOUNT_RISKY_COUNTRY")).toHaveAttribute(
      "data-reason",
      "HIGH_AMOUNT_RISKY_COUNTRY",
    );
    expect(alert).toHaveTextContent("$412.50");
  });

  it("gives both charts an accessible table of their data", () => {
    renderDashboard(snapshot());
    const countries = screen.getByRole("table", { name: "Sales by country" });
    const rows = within(countries).getAllByRole("row").slice(1);
    expect(rows.map((row) => within(row).getByRole("rowheader").textContent)).toEqual([
      "United States",
      "Germany",
    ]);
    const perMinute = screen.getByRole("table", { name: "Orders per minute" });
    expect(within(perMinute).getAllByRole("row")).toHaveLength(3);
    expect(screen.getByTestId("sales-by-country-chart")).toBeInTheDocument();
    expect(screen.getByTestId("orders-per-minute-chart")).toBeInTheDocument();
  });

  it("announces the connection state politely with its time of last update", () => {
    renderDashboard(snapshot());
    const state = screen.getByTestId("connection-state");
    expect(state).toHaveAttribute("data-state", "live");
    expect(state).toHaveAttribute("aria-live", "polite");
    expect(state).toHaveTextContent("Live");
    expect(screen.getByTestId("last-update")).toHaveAttribute("dateTime", "2026-11-27T03:40:01Z");
  });

  it("says when the data arrives by polling", () => {
    renderDashboard(snapshot({ transport: "poll" }));
    expect(screen.getByTestId("connection-state")).toHaveTextContent("Live (polling)");
  });

  it("shows a loading state before the first snapshot", () => {
    renderDashboard(snapshot({ data: null, connection: "reconnecting", connecting: true }));
    expect(screen.getByTestId("loading")).toBeInTheDocument();
    expect(screen.getByRole("main")).toHaveAttribute("aria-busy", "true");
    expect(screen.getByTestId("connection-state")).toHaveTextContent("Connecting…");
    expect(screen.queryByTestId("kpi-total-orders")).not.toBeInTheDocument();
  });

  it("shows empty states when there are no orders yet", () => {
    renderDashboard(snapshot({ data: emptyAnalytics() }));
    expect(screen.getByTestId("kpi-total-orders")).toHaveTextContent("0");
    expect(screen.getByTestId("kpi-total-sales")).toHaveTextContent("$0.00");
    expect(screen.getByText(/No orders yet/)).toBeInTheDocument();
    expect(screen.getByText("No fraud alerts.")).toBeInTheDocument();
    expect(screen.getByText("No sales yet.")).toBeInTheDocument();
    expect(screen.queryAllByTestId("order-row")).toHaveLength(0);
  });

  it("shows an error state with a keyboard-usable reload when the backend never answered", async () => {
    const onReload = vi.fn();
    renderDashboard(
      snapshot({
        data: null,
        connection: "unavailable",
        error: "The backend cannot be reached.",
      }),
      onReload,
    );
    expect(screen.getByTestId("connection-state")).toHaveAttribute("data-state", "unavailable");
    expect(screen.getByTestId("connection-state")).toHaveTextContent("Backend unavailable");
    expect(screen.getByTestId("error-state")).toHaveTextContent("The backend cannot be reached.");

    const user = userEvent.setup();
    await user.tab();
    expect(screen.getByRole("button", { name: "Reload now" })).toHaveFocus();
    await user.keyboard("{Enter}");
    expect(onReload).toHaveBeenCalledOnce();
  });

  it("keeps the last data on screen with a notice while the backend is unavailable", () => {
    renderDashboard(snapshot({ connection: "unavailable", error: "The backend cannot be reached." }));
    expect(screen.getByTestId("stale-banner")).toHaveTextContent("Showing the last data received");
    expect(screen.getByTestId("kpi-total-orders")).toHaveTextContent("1,234");
  });

  it("makes the orders table a focusable region so it can be scrolled from the keyboard", async () => {
    renderDashboard(snapshot());
    const user = userEvent.setup();
    await user.tab();
    expect(screen.getByRole("region", { name: "Latest orders table" })).toHaveFocus();
  });

  it("highlights an order that arrives after the first render", () => {
    const { rerender } = renderDashboard(snapshot());
    expect(document.querySelectorAll(".row--new")).toHaveLength(0);
    const data = analytics();
    const next = { ...data, orders: [order("ord_04"), ...data.orders] };
    rerender(<Dashboard snapshot={snapshot({ data: next })} locale="en-US" />);
    const fresh = document.querySelectorAll<HTMLElement>(".row--new");
    expect([...fresh].map((row) => row.dataset.orderId)).toEqual(["ord_04"]);
  });

  it("formats numbers for the reader's locale", () => {
    render(<Dashboard snapshot={snapshot()} locale="de-DE" />);
    expect(screen.getByTestId("kpi-total-orders")).toHaveTextContent("1.234");
  });
});

import { act, render, screen } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import { analytics, order } from "./test/fixtures";
import { FakeEventSource } from "./test/fakes";

beforeEach(() => {
  FakeEventSource.reset();
  vi.stubGlobal("EventSource", FakeEventSource);
  vi.stubGlobal(
    "fetch",
    vi.fn(() => Promise.reject(new TypeError("refused"))),
  );
});

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("App", () => {
  it("renders each snapshot pushed on /api/stream without a reload", () => {
    render(<App />);
    expect(screen.getByTestId("loading")).toBeInTheDocument();
    const source = FakeEventSource.latest();
    expect(source.url).toBe("/api/stream");

    act(() => source.emit("analytics", analytics()));
    expect(screen.getAllByTestId("order-row")).toHaveLength(3);
    expect(screen.getByTestId("connection-state")).toHaveAttribute("data-state", "live");

    const data = analytics();
    act(() =>
      source.emit("analytics", {
        ...data,
        orders: [order("ord_04"), ...data.orders],
        totals: { ...data.totals, orders: 1235 },
      }),
    );
    expect(screen.getAllByTestId("order-row")[0]).toHaveAttribute("data-order-id", "ord_04");
    expect(screen.getByTestId("kpi-total-orders")).toHaveAttribute("data-value", "1235");
  });

  it("closes the stream when unmounted", () => {
    const { unmount } = render(<App />);
    unmount();
    expect(FakeEventSource.instances.every((source) => source.closed)).toBe(true);
  });
});

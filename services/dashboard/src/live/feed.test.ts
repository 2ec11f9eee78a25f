import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { analytics, order } from "../test/fixtures";
import { FakeEventSource, jsonResponse } from "../test/fakes";
import { AnalyticsFeed, type FeedSnapshot } from "./feed";

function setup(fetchImpl: typeof fetch = vi.fn(() => Promise.reject(new TypeError("refused")))) {
  const snapshots: FeedSnapshot[] = [];
  const feed = new AnalyticsFeed((snapshot) => snapshots.push(snapshot), {
    createEventSource: (url) => new FakeEventSource(url),
    fetchImpl,
  });
  feed.start();
  const last = () => snapshots.at(-1);
  return { feed, snapshots, last, fetchImpl };
}

function analyticsCalls(fetchImpl: { mock: { calls: unknown[][] } }): number {
  return fetchImpl.mock.calls.filter(([url]) => url === "/api/analytics").length;
}

beforeEach(() => {
  vi.useFakeTimers();
  FakeEventSource.reset();
});

afterEach(() => {
  vi.useRealTimers();
});

describe("AnalyticsFeed", () => {
  it("opens the stream and goes live with each pushed snapshot", () => {
    const { last } = setup();
    expect(FakeEventSource.latest().url).toBe("/api/stream");

    FakeEventSource.latest().emit("analytics", analytics());
    expect(last()).toMatchObject({ connection: "live", transport: "push", connecting: false });
    expect(last()?.data?.totals.orders).toBe(1234);

    const next = analytics({ orders: [order("ord_04"), ...analytics().orders] });
    FakeEventSource.latest().emit("analytics", next);
    expect(last()?.data?.orders[0]?.order_id).toBe("ord_04");
  });

  it("falls back to polling /api/analytics when the stream fails", async () => {
    const fetchImpl = vi.fn(() => Promise.resolve(jsonResponse(analytics())));
    const { last } = setup(fetchImpl);
    FakeEventSource.latest().fail();
    await vi.advanceTimersByTimeAsync(0);

    expect(fetchImpl).toHaveBeenCalledWith("/api/analytics", expect.anything());
    expect(last()).toMatchObject({ connection: "live", transport: "poll" });

    // Polls every second while the stream is down.
    await vi.advanceTimersByTimeAsync(999);
    expect(fetchImpl).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(fetchImpl).toHaveBeenCalledTimes(2);
  });

  it("reports the backend unavailable after two failed polls, and live again when it answers", async () => {
    let up = false;
    const fetchImpl = vi.fn(() =>
      up ? Promise.resolve(jsonResponse(analytics())) : Promise.reject(new TypeError("refused")),
    );
    const { last } = setup(fetchImpl);
    FakeEventSource.latest().emit("analytics", analytics());
    FakeEventSource.latest().fail();
    expect(last()?.connection).toBe("reconnecting");

    await vi.advanceTimersByTimeAsync(0);
    expect(last()?.connection).toBe("reconnecting");
    await vi.advanceTimersByTimeAsync(1000);
    expect(last()).toMatchObject({
      connection: "unavailable",
      error: "The backend cannot be reached.",
    });
    // The last data stays on screen while the backend is away.
    expect(last()?.data?.totals.orders).toBe(1234);

    up = true;
    await vi.advanceTimersByTimeAsync(1000);
    expect(last()).toMatchObject({ connection: "live", error: null });
  });

  it("retries the stream with backoff and stops polling once it delivers again", async () => {
    const fetchImpl = vi.fn(() => Promise.reject(new TypeError("refused")));
    setup(fetchImpl);
    const first = FakeEventSource.latest();
    first.fail();
    expect(first.closed).toBe(true);

    await vi.advanceTimersByTimeAsync(1000);
    const second = FakeEventSource.latest();
    expect(second).not.toBe(first);
    second.fail();
    // The second retry waits twice as long.
    await vi.advanceTimersByTimeAsync(1999);
    expect(FakeEventSource.instances).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    const third = FakeEventSource.latest();
    expect(FakeEventSource.instances).toHaveLength(3);

    third.emit("analytics", analytics());
    const polls = analyticsCalls(fetchImpl);
    await vi.advanceTimersByTimeAsync(4000);
    expect(analyticsCalls(fetchImpl)).toBe(polls);
  });

  it("polls as well when the stream stays silent (a buffering proxy)", async () => {
    const fetchImpl = vi.fn(() => Promise.resolve(jsonResponse(analytics())));
    const { last } = setup(fetchImpl);
    await vi.advanceTimersByTimeAsync(2999);
    expect(fetchImpl).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(fetchImpl).toHaveBeenCalledTimes(1);
    expect(last()).toMatchObject({ connection: "live", transport: "poll" });
  });

  it("shows the backend's detail when it answers with an error status", async () => {
    const fetchImpl = vi.fn(() =>
      Promise.resolve(jsonResponse({ detail: "Couchbase is unavailable" }, 503)),
    );
    const { last } = setup(fetchImpl);
    FakeEventSource.latest().fail();
    await vi.advanceTimersByTimeAsync(0);
    expect(last()?.error).toBe("The backend answered 503: Couchbase is unavailable");
    expect(last()?.connecting).toBe(true);
    await vi.advanceTimersByTimeAsync(1000);
    expect(last()).toMatchObject({ connection: "unavailable", connecting: false });
  });

  it("keeps the last good data when a pushed document is malformed", () => {
    const { last } = setup();
    FakeEventSource.latest().emit("analytics", analytics());
    FakeEventSource.latest().emit("analytics", { status: "ok" });
    expect(last()?.data?.totals.orders).toBe(1234);
    expect(last()?.error).toMatch(/unexpected analytics document/);
  });

  it("asks the API after a quiet spell and reports unavailable when it answers 503", async () => {
    let healthy = true;
    const fetchImpl = vi.fn(() =>
      Promise.resolve(
        healthy
          ? jsonResponse({ orders: [] })
          : jsonResponse({ detail: "analytics out of date: couchbase unreachable" }, 503),
      ),
    );
    const { last } = setup(fetchImpl);
    FakeEventSource.latest().emit("analytics", analytics());

    await vi.advanceTimersByTimeAsync(5000);
    expect(fetchImpl).toHaveBeenLastCalledWith("/api/orders?limit=1", expect.anything());
    expect(last()?.connection).toBe("live");

    healthy = false;
    await vi.advanceTimersByTimeAsync(5000);
    expect(last()?.connection).toBe("reconnecting");
    await vi.advanceTimersByTimeAsync(1000);
    expect(last()).toMatchObject({
      connection: "unavailable",
      error: "The backend answered 503: analytics out of date: couchbase unreachable",
    });
    expect(FakeEventSource.latest().closed).toBe(false);

    healthy = true;
    await vi.advanceTimersByTimeAsync(1000);
    expect(last()).toMatchObject({ connection: "live", error: null });
  });

  it("does not ask while snapshots keep arriving", async () => {
    const fetchImpl = vi.fn(() => Promise.resolve(jsonResponse({ orders: [] })));
    setup(fetchImpl);
    for (let i = 0; i < 6; i += 1) {
      FakeEventSource.latest().emit("analytics", analytics());
      await vi.advanceTimersByTimeAsync(4000);
    }
    expect(fetchImpl).not.toHaveBeenCalled();
  });

  it("closes the stream and stops every timer when stopped", async () => {
    const fetchImpl = vi.fn(() => Promise.reject(new TypeError("refused")));
    const { feed } = setup(fetchImpl);
    FakeEventSource.latest().fail();
    feed.stop();
    const calls = fetchImpl.mock.calls.length;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(fetchImpl.mock.calls.length).toBe(calls);
    expect(FakeEventSource.instances).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });
});

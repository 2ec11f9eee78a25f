import { describe, expect, it } from "vitest";
import { analytics } from "../test/fixtures";
import { InvalidAnalytics, parseAnalytics } from "./parse";

describe("parseAnalytics", () => {
  it("accepts the documented analytics document unchanged", () => {
    const doc = analytics();
    expect(parseAnalytics(JSON.parse(JSON.stringify(doc)))).toEqual(doc);
  });

  it("treats missing lists as empty", () => {
    const { orders: _orders, by_status: _byStatus, ...rest } = analytics();
    const parsed = parseAnalytics(rest);
    expect(parsed.orders).toEqual([]);
    expect(parsed.by_status).toEqual([]);
  });

  it("rejects a document without totals", () => {
    const { totals: _totals, ...rest } = analytics();
    expect(() => parseAnalytics(rest)).toThrow(InvalidAnalytics);
  });

  it("rejects a total that is not a number, naming it", () => {
    const doc = analytics();
    expect(() => parseAnalytics({ ...doc, totals: { ...doc.totals, sales: "12" } })).toThrow(
      /totals\.sales/,
    );
  });

  it("rejects something that is not an object", () => {
    expect(() => parseAnalytics("<html>")).toThrow(InvalidAnalytics);
  });
});

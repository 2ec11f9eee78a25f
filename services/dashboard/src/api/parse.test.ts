import { describe, expect, it } from "vitest";
import { analytics, order } from "../test/fixtures";
import { InvalidAnalytics, parseAnalytics } from "./parse";

describe("parseAnalytics", () => {
  it("accepts the documented analytics document unchanged", () => {
    const doc = analytics();
    expect(parseAnalytics(JSON.parse(JSON.stringify(doc)))).toEqual(doc);
  });

  it("rejects a document missing a list, naming it", () => {
    const { by_status: _byStatus, ...rest } = analytics();
    expect(() => parseAnalytics(rest)).toThrow(/by_status is not a list/);
  });

  it("rejects an order without its source, naming it", () => {
    const { source: _source, ...unsourced } = order("ord_09");
    expect(() => parseAnalytics({ ...analytics(), orders: [unsourced] })).toThrow(
      /orders\[0\]\.source is not a string/,
    );
  });

  it("rejects a document without updated_at", () => {
    expect(() => parseAnalytics({ ...analytics(), updated_at: null })).toThrow(/updated_at/);
  });

  it("rejects a status other than ok", () => {
    expect(() => parseAnalytics({ ...analytics(), status: "error" })).toThrow(/status/);
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

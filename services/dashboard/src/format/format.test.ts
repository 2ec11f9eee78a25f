import { describe, expect, it } from "vitest";
import { describeReason, displayCurrency, makeFormatters } from "./format";

// Intl output uses narrow no-break spaces in some locales; compare with plain spaces.
const plain = (text: string) => text.replace(/[\u00a0\u202f]/g, " ");

describe("makeFormatters", () => {
  it("formats money in the currency and the locale given", () => {
    expect(makeFormatters("en-US").money(98765.43, "USD")).toBe("$98,765.43");
    expect(plain(makeFormatters("de-DE").money(98765.43, "EUR"))).toBe("98.765,43 €");
  });

  it("groups counts for the locale", () => {
    expect(makeFormatters("en-US").count(1234567)).toBe("1,234,567");
    expect(makeFormatters("de-DE").count(1234567)).toBe("1.234.567");
  });

  it("falls back to USD for a malformed currency code instead of throwing", () => {
    expect(makeFormatters("en-US").money(5, "dollars")).toBe("$5.00");
  });

  it("names countries for the locale and keeps unknown codes", () => {
    const fmt = makeFormatters("en-US");
    expect(fmt.country("DE")).toBe("Germany");
    expect(fmt.country("??")).toBe("??");
  });

  it("leaves an unparseable time as it came", () => {
    expect(makeFormatters("en-US").time("not a time")).toBe("not a time");
  });
});

describe("describeReason", () => {
  it("explains the known fraud rule", () => {
    expect(describeReason("HIGH_AMOUNT_RISKY_COUNTRY")).toBe(
      "High amount, untrusted country",
    );
  });

  it("turns an unknown code into words", () => {
    expect(describeReason("VELOCITY_LIMIT")).toBe("Velocity limit");
  });
});

describe("displayCurrency", () => {
  it("uses the newest order's currency, USD when there are none", () => {
    expect(displayCurrency([{ currency: "EUR" }, { currency: "USD" }])).toBe("EUR");
    expect(displayCurrency([])).toBe("USD");
  });
});

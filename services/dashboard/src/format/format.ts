// Every number, amount and time on the page goes through these, so the whole page follows
// the reader's locale (undefined = the browser's).

export interface Formatters {
  count(value: number): string;
  money(value: number, currency: string): string;
  compactMoney(value: number, currency: string): string;
  time(iso: string): string;
  clock(date: Date): string;
  minute(iso: string): string;
  country(code: string): string;
}

export function makeFormatters(locale?: string): Formatters {
  const count = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
  const moneyCache = new Map<string, Intl.NumberFormat>();
  const money = (currency: string, compact: boolean): Intl.NumberFormat => {
    const key = `${currency}:${compact}`;
    let formatter = moneyCache.get(key);
    if (!formatter) {
      formatter = new Intl.NumberFormat(locale, {
        style: "currency",
        currency: safeCurrency(currency),
        ...(compact ? { notation: "compact", maximumFractionDigits: 1 } : {}),
      });
      moneyCache.set(key, formatter);
    }
    return formatter;
  };
  const time = new Intl.DateTimeFormat(locale, {
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
  const minute = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit" });
  const regions = regionNames(locale);

  return {
    count: (value) => count.format(value),
    money: (value, currency) => money(currency, false).format(value),
    compactMoney: (value, currency) => money(currency, true).format(value),
    time: (iso) => formatDate(iso, time),
    clock: (date) => time.format(date),
    minute: (iso) => formatDate(iso, minute),
    country: (code) => {
      try {
        return regions?.of(code.toUpperCase()) ?? code;
      } catch {
        return code;
      }
    },
  };
}

function formatDate(iso: string, formatter: Intl.DateTimeFormat): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : formatter.format(date);
}

function regionNames(locale?: string): Intl.DisplayNames | null {
  try {
    return new Intl.DisplayNames(locale, { type: "region" });
  } catch {
    return null;
  }
}

// Intl throws on a malformed currency code; an order from a misbehaving producer must not
// blank the page.
function safeCurrency(code: string): string {
  return /^[A-Z]{3}$/.test(code) ? code : "USD";
}

/**
 * The currency the totals are shown in. The backend sums amounts as numbers; the orders it
 * returns tell which currency that is. If they disagree, the first (newest) one wins.
 */
export function displayCurrency(orders: readonly { currency: string }[]): string {
  return orders[0]?.currency ?? "USD";
}

const KNOWN_REASONS: Record<string, string> = {
  HIGH_AMOUNT_RISKY_COUNTRY: "High amount, untrusted country",
};

/** A fraud reason code as a sentence, e.g. HIGH_AMOUNT_RISKY_COUNTRY. */
export function describeReason(code: string): string {
  const known = KNOWN_REASONS[code];
  if (known) return known;
  const words = code.toLowerCase().replace(/_/g, " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

import { parseAnalytics } from "../api/parse";
import type { Analytics } from "../api/types";

// How fresh the page is, as the status badge shows it. Before the first answer the
// state is "reconnecting" (labelled "Connecting" by the view): it is not live yet, and
// nothing has failed long enough to call the backend unavailable.
export type ConnectionState = "live" | "reconnecting" | "unavailable";

/** Which channel delivered the last snapshot. */
export type Transport = "push" | "poll";

export interface FeedSnapshot {
  data: Analytics | null;
  connection: ConnectionState;
  transport: Transport | null;
  /** When the browser received the last snapshot. */
  receivedAt: Date | null;
  /** What went wrong most recently, for people; null while all is well. */
  error: string | null;
  /** True until the first snapshot or the first definite failure. */
  connecting: boolean;
}

/** The part of the browser's EventSource the feed uses (so tests can fake it). */
export interface EventSourceLike {
  addEventListener(type: string, listener: (event: MessageEvent<string>) => void): void;
  close(): void;
  onerror: ((event: Event) => void) | null;
}

export interface FeedOptions {
  streamUrl?: string;
  analyticsUrl?: string;
  /** A small API request that fails exactly when `/api/analytics` would (503, refused). */
  probeUrl?: string;
  /** Poll period while the stream is down; the page must follow changes within 1 s. */
  pollIntervalMs?: number;
  /** Consecutive failed polls after which the backend counts as unavailable. */
  unavailableAfter?: number;
  /** Poll as well if the stream stays silent this long after opening (buffering proxy). */
  firstEventTimeoutMs?: number;
  /**
   * The stream only speaks on change, and its keepalives are comments the page never sees;
   * after this much silence the feed asks the API whether the backend still has data.
   */
  probeAfterMs?: number;
  /** Give up on one poll after this long. */
  requestTimeoutMs?: number;
  retryInitialMs?: number;
  retryMaxMs?: number;
  createEventSource?: (url: string) => EventSourceLike;
  fetchImpl?: typeof fetch;
  now?: () => Date;
}

export const INITIAL_SNAPSHOT: FeedSnapshot = {
  data: null,
  connection: "reconnecting",
  transport: null,
  receivedAt: null,
  error: null,
  connecting: true,
};

/**
 * Keeps one analytics snapshot current: the server pushes it over Server-Sent Events, and
 * while the stream is down (or silent behind a buffering proxy) the feed polls
 * `/api/analytics` every second until the stream is back. Aggregates always come from the
 * server; the feed never computes any.
 */
export class AnalyticsFeed {
  private readonly opts: Required<FeedOptions>;
  private snapshot: FeedSnapshot = INITIAL_SNAPSHOT;
  private source: EventSourceLike | null = null;
  private streaming = false;
  private stopped = true;
  private failedPolls = 0;
  private retryDelay: number;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private pollTimer: ReturnType<typeof setTimeout> | null = null;
  private watchdog: ReturnType<typeof setTimeout> | null = null;
  private probeTimer: ReturnType<typeof setTimeout> | null = null;
  private failedProbes = 0;
  private polling = false;
  private inflight: AbortController | null = null;

  constructor(
    private readonly onChange: (snapshot: FeedSnapshot) => void,
    options: FeedOptions = {},
  ) {
    this.opts = {
      streamUrl: "/api/stream",
      analyticsUrl: "/api/analytics",
      probeUrl: "/api/orders?limit=1",
      pollIntervalMs: 1000,
      unavailableAfter: 2,
      firstEventTimeoutMs: 3000,
      probeAfterMs: 5000,
      requestTimeoutMs: 4000,
      retryInitialMs: 1000,
      retryMaxMs: 5000,
      createEventSource: (url) => new EventSource(url),
      fetchImpl: (...args) => fetch(...args),
      now: () => new Date(),
      ...options,
    };
    this.retryDelay = this.opts.retryInitialMs;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.openStream();
  }

  stop(): void {
    this.stopped = true;
    this.closeStream();
    this.stopPolling();
    this.clear("retryTimer");
  }

  private openStream(): void {
    this.closeStream();
    const source = this.opts.createEventSource(this.opts.streamUrl);
    this.source = source;
    source.addEventListener("analytics", (event) => {
      if (source !== this.source) return;
      this.onStreamEvent(event.data);
    });
    // The browser would retry on its own, but it never tells a refused connection from a
    // slow one; closing and retrying ourselves lets the poller decide availability.
    source.onerror = () => {
      if (source !== this.source) return;
      this.onStreamError();
    };
    this.watchdog = setTimeout(() => {
      this.watchdog = null;
      if (!this.streaming) this.startPolling();
    }, this.opts.firstEventTimeoutMs);
  }

  private closeStream(): void {
    this.clear("watchdog");
    this.clear("probeTimer");
    this.source?.close();
    this.source = null;
    this.streaming = false;
  }

  private onStreamEvent(raw: string): void {
    let data: Analytics;
    try {
      data = parseAnalytics(JSON.parse(raw));
    } catch (error) {
      this.update({ error: describe(error) });
      return;
    }
    this.streaming = true;
    this.retryDelay = this.opts.retryInitialMs;
    this.clear("watchdog");
    this.stopPolling();
    this.failedProbes = 0;
    this.accept(data, "push");
    this.scheduleProbe(this.opts.probeAfterMs);
  }

  /**
   * An open stream can hide a backend that lost Couchbase (it keeps the connection and
   * sends nothing) or a connection a proxy silently dropped. Silence is normal when no
   * orders flow, so ask: two failed answers in a row mean unavailable, as for polling.
   */
  private scheduleProbe(delay: number): void {
    this.clear("probeTimer");
    this.probeTimer = setTimeout(() => {
      this.probeTimer = null;
      void this.probe();
    }, delay);
  }

  private async probe(): Promise<void> {
    const source = this.source;
    const controller = new AbortController();
    const timeout = setTimeout(() => controller.abort(), this.opts.requestTimeoutMs);
    let failure: string | null = null;
    try {
      const response = await this.opts.fetchImpl(this.opts.probeUrl, {
        headers: { Accept: "application/json" },
        cache: "no-store",
        signal: controller.signal,
      });
      if (!response.ok) {
        failure = `The backend answered ${response.status}: ${await detailOf(response)}`;
      }
    } catch {
      failure = "The backend cannot be reached.";
    } finally {
      clearTimeout(timeout);
    }
    // The stream may have failed or been replaced meanwhile; its own handling wins.
    if (this.stopped || !this.streaming || source !== this.source) return;
    if (failure === null) {
      this.failedProbes = 0;
      if (this.snapshot.connection !== "live") {
        this.update({ connection: "live", transport: "push", error: null });
      }
      this.scheduleProbe(this.opts.probeAfterMs);
      return;
    }
    this.failedProbes += 1;
    const unavailable = this.failedProbes >= this.opts.unavailableAfter;
    this.update({ connection: unavailable ? "unavailable" : "reconnecting", error: failure });
    this.scheduleProbe(this.opts.pollIntervalMs);
  }

  private onStreamError(): void {
    this.closeStream();
    if (this.stopped) return;
    if (this.snapshot.connection === "live" && this.snapshot.transport === "push") {
      this.update({ connection: "reconnecting", error: "The live stream was interrupted." });
    }
    this.startPolling();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped) this.openStream();
    }, this.retryDelay);
    this.retryDelay = Math.min(this.retryDelay * 2, this.opts.retryMaxMs);
  }

  private startPolling(): void {
    if (this.polling || this.stopped) return;
    this.polling = true;
    void this.poll();
  }

  private stopPolling(): void {
    this.polling = false;
    this.clear("pollTimer");
    this.inflight?.abort();
    this.inflight = null;
  }

  private async poll(): Promise<void> {
    const controller = new AbortController();
    this.inflight = controller;
    const timeout = setTimeout(() => controller.abort(), this.opts.requestTimeoutMs);
    try {
      const data = await this.fetchAnalytics(controller.signal);
      if (!this.polling || controller.signal.aborted) return;
      this.failedPolls = 0;
      this.accept(data, "poll");
    } catch (error) {
      if (!this.polling || this.inflight !== controller) return;
      this.failedPolls += 1;
      const unavailable = this.failedPolls >= this.opts.unavailableAfter;
      this.update({
        connection: unavailable ? "unavailable" : "reconnecting",
        error: describe(error),
        connecting: this.snapshot.connecting && !unavailable,
      });
    } finally {
      clearTimeout(timeout);
      if (this.inflight === controller) this.inflight = null;
    }
    if (this.polling) {
      this.pollTimer = setTimeout(() => {
        this.pollTimer = null;
        if (this.polling) void this.poll();
      }, this.opts.pollIntervalMs);
    }
  }

  private async fetchAnalytics(signal: AbortSignal): Promise<Analytics> {
    let response: Response;
    try {
      response = await this.opts.fetchImpl(this.opts.analyticsUrl, {
        headers: { Accept: "application/json" },
        cache: "no-store",
        signal,
      });
    } catch {
      throw new Error("The backend cannot be reached.");
    }
    if (!response.ok) {
      throw new Error(`The backend answered ${response.status}: ${await detailOf(response)}`);
    }
    return parseAnalytics(await response.json());
  }

  private accept(data: Analytics, transport: Transport): void {
    this.update({
      data,
      transport,
      connection: "live",
      receivedAt: this.opts.now(),
      error: null,
      connecting: false,
    });
  }

  private update(change: Partial<FeedSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...change };
    this.onChange(this.snapshot);
  }

  private clear(timer: "retryTimer" | "pollTimer" | "watchdog" | "probeTimer"): void {
    const handle = this[timer];
    if (handle !== null) clearTimeout(handle);
    this[timer] = null;
  }
}

async function detailOf(response: Response): Promise<string> {
  try {
    const body: unknown = await response.json();
    if (typeof body === "object" && body !== null && "detail" in body) {
      const detail = (body as { detail: unknown }).detail;
      if (typeof detail === "string") return detail;
    }
  } catch {
    // Not JSON (a proxy's error page): the status text is all there is.
  }
  return response.statusText || "no details";
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

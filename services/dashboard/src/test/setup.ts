import "@testing-library/jest-dom/vitest";

// jsdom has no layout: recharts' ResponsiveContainer needs a ResizeObserver to exist.
class NoopResizeObserver {
  observe(): void {}
  unobserve(): void {}
  disconnect(): void {}
}
globalThis.ResizeObserver ??= NoopResizeObserver as unknown as typeof ResizeObserver;

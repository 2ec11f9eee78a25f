// SVG attributes take plain colours; these match the variables in styles.css.
export const chartTheme = {
  accent: "#2563eb",
  grid: "#e5e9f0",
  text: "#1f2937",
  muted: "#64748b",
  hover: "rgba(37, 99, 235, 0.08)",
} as const;

import { useState } from "react";

/**
 * The ids that were not in the previous list, so new rows can be highlighted. The first
 * list counts as already seen: on load nothing flashes.
 */
export function useFreshIds(ids: readonly string[]): ReadonlySet<string> {
  const key = ids.join("\n");
  const [seen, setSeen] = useState({ key, known: new Set(ids), fresh: new Set<string>() });
  if (seen.key !== key) {
    // Adjusting state while rendering (React's documented pattern for "derived from the
    // previous props"): no effect, no extra paint without the highlight.
    const fresh = new Set(ids.filter((id) => !seen.known.has(id)));
    const next = { key, known: new Set(ids), fresh };
    setSeen(next);
    return fresh;
  }
  return seen.fresh;
}

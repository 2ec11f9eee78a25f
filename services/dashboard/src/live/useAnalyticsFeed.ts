import { useEffect, useState } from "react";
import { AnalyticsFeed, type FeedOptions, type FeedSnapshot, INITIAL_SNAPSHOT } from "./feed";

/** The current analytics snapshot, kept live for as long as the component is mounted. */
export function useAnalyticsFeed(options?: FeedOptions): FeedSnapshot {
  const [snapshot, setSnapshot] = useState<FeedSnapshot>(INITIAL_SNAPSHOT);
  useEffect(() => {
    const feed = new AnalyticsFeed(setSnapshot, options);
    feed.start();
    return () => feed.stop();
    // The options are read once per mount: a new feed per render would drop the stream.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  return snapshot;
}

import { Dashboard } from "./components/Dashboard";
import { useAnalyticsFeed } from "./live/useAnalyticsFeed";

export function App() {
  const snapshot = useAnalyticsFeed();
  return (
    <Dashboard
      snapshot={snapshot}
      locale={navigator.languages?.[0]}
      onReload={() => window.location.reload()}
    />
  );
}

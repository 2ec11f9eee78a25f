import type { ConnectionState, Transport } from "../live/feed";

interface Props {
  connection: ConnectionState;
  connecting: boolean;
  transport: Transport | null;
  /** The time of the data on screen, already formatted; null before the first snapshot. */
  lastUpdate: { label: string; iso: string } | null;
}

export function connectionLabel(
  connection: ConnectionState,
  connecting: boolean,
  transport: Transport | null,
): string {
  if (connection === "live") return transport === "poll" ? "Live (polling)" : "Live";
  if (connection === "unavailable") return "Backend unavailable";
  return connecting ? "Connecting…" : "Reconnecting…";
}

/** The badge that says how fresh the page is; screen readers hear each change of state. */
export function ConnectionStatus({ connection, connecting, transport, lastUpdate }: Props) {
  return (
    <div className="connection">
      <p
        className={`badge badge--${connection}`}
        role="status"
        aria-live="polite"
        data-testid="connection-state"
        data-state={connection}
      >
        <span className="badge__dot" aria-hidden="true" />
        {connectionLabel(connection, connecting, transport)}
      </p>
      <p className="connection__updated">
        {lastUpdate ? (
          <>
            Updated{" "}
            <time dateTime={lastUpdate.iso} data-testid="last-update">
              {lastUpdate.label}
            </time>
          </>
        ) : (
          "No data yet"
        )}
      </p>
    </div>
  );
}

import { useRealtime } from "../realtime";

export function ConnectionBanner() {
  const { status } = useRealtime();
  if (status === "reconnecting")
    return (
      <div className="banner warn" role="status" data-testid="reconnecting-banner">
        Connection lost. Reconnecting…
      </div>
    );
  if (status === "failed")
    return (
      <div className="banner error" role="alert" data-testid="signed-out-banner">
        The server no longer accepts this sign-in. Sign out and sign in again.
      </div>
    );
  if (status === "connecting")
    return (
      <div className="banner" role="status" data-testid="connecting-banner">
        Connecting…
      </div>
    );
  return null;
}

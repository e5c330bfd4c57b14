import { usePresence, useRealtime } from "../realtime";
import { sameId, type Id } from "../types";

export function initials(name: string): string {
  return name.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0]!.toUpperCase()).join("") || "?";
}

export function PresenceList({ projectId }: { projectId: Id | null }) {
  const { user, status } = useRealtime();
  const { members, error } = usePresence(projectId);
  if (projectId === null) return null;
  if (error)
    return (
      <span className="error" data-testid="presence-error">
        {error}
      </span>
    );
  return (
    // while disconnected the list is as of the last connection: shown faded
    <ul className={`presence${status === "connected" ? "" : " stale"}`} aria-label="Online now" data-testid="presence">
      {members.map((m) => (
        <li key={String(m.userId)} title={m.userName} className={sameId(m.userId, user.userId) ? "me" : ""} data-testid="online-member">
          <span className="avatar">{initials(m.userName)}</span> <span className="name" data-testid="member-name">{m.userName}</span>
        </li>
      ))}
    </ul>
  );
}

import { useState } from "react";
import { useNotifications } from "../realtime";
import { openLink } from "./address";

function BellIcon() {
  return (
    <svg width="16" height="16" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" strokeWidth="2">
      <path d="M6 8a6 6 0 1 1 12 0c0 7 3 9 3 9H3s3-2 3-9" />
      <path d="M10.3 21a1.94 1.94 0 0 0 3.4 0" />
    </svg>
  );
}

/** "14:05" today, "3 Mar, 14:05" before. */
export function whenOf(ts: string | number, now: Date = new Date()): string {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return "";
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return d.toDateString() === now.toDateString() ? time : `${d.toLocaleDateString([], { day: "numeric", month: "short" })}, ${time}`;
}

export function NotificationBell() {
  const { notifications, unread, error, markRead } = useNotifications();
  const [open, setOpen] = useState(false);
  return (
    <div className="bell">
      <button
        type="button"
        onClick={() => setOpen((o) => !o)}
        aria-label={`Notifications, ${unread} unread`}
        aria-expanded={open}
        data-testid="bell"
      >
        <BellIcon />
        {unread > 0 && (
          <span className="badge" data-testid="bell-count">
            {unread}
          </span>
        )}
      </button>
      {open && (
        <div className="dropdown" data-testid="notifications">
          {error && <p className="error">{error}</p>}
          {notifications.length === 0 && <p className="muted">Nothing new.</p>}
          <ul>
            {notifications.map((n) => (
              <li key={String(n.id)} className={n.read ? "read" : "unread"} data-testid="notification" data-type={n.type}>
                {n.link ? (
                  <a
                    href={n.link}
                    onClick={(e) => {
                      e.preventDefault();
                      setOpen(false);
                      if (!n.read) void markRead(n.id);
                      openLink(n.link as string);
                    }}
                    data-testid="notification-link"
                  >
                    <strong data-testid="notification-title">{n.title}</strong>
                  </a>
                ) : (
                  <strong data-testid="notification-title">{n.title}</strong>
                )}
                {n.body && (
                  <p className="body" data-testid="notification-body">
                    {n.body}
                  </p>
                )}
                <time className="when" dateTime={String(n.timestamp)}>
                  {whenOf(n.timestamp)}
                </time>
                {!n.read && (
                  <button type="button" className="link" onClick={() => void markRead(n.id)} data-testid="mark-read">
                    Mark read
                  </button>
                )}
              </li>
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}

import { useState } from "react";
import { useNotifications } from "../realtime";

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
        🔔{unread > 0 && (
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
              <li key={String(n.id)} className={n.read ? "read" : "unread"} data-testid="notification">
                <strong>{n.title}</strong>
                <p>{n.body}</p>
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

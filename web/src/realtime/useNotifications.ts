// The signed-in user's notifications: the unread ones stored while they were offline (REST,
// and the hub replays them at connect), then live ones on `user:<id>`, which the hub joins
// at connect. Marking one read tells the server; the list keeps it, shown as read.

import { useCallback, useEffect, useState } from "react";
import { sameId, type Id, type Notification } from "../types";
import { listen } from "./listen";
import { useRealtime } from "./SocketProvider";

export interface Notifications {
  notifications: Notification[];
  unread: number;
  error: string | null;
  markRead: (id: Id) => Promise<void>;
}

export function useNotifications(): Notifications {
  const { socket, api } = useRealtime();
  const [list, setList] = useState<Notification[]>([]);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let current = true;
    const fetchUnread = (): void => {
      api.unreadNotifications().then(
        (stored) => {
          if (!current) return;
          setList((shown) => mergeNotifications(shown, stored));
          setError(null);
        },
        (err: Error) => {
          if (current) setError(err.message);
        },
      );
    };
    fetchUnread();
    const stop = listen(socket, {
      connect: fetchUnread,
      // live ones, and on every connect the hub replays the unread ones: merged by id
      notification: (n: Notification) => setList((shown) => mergeNotifications(shown, [n])),
    });
    return () => {
      current = false;
      stop();
    };
  }, [socket, api]);

  const markRead = useCallback(
    async (id: Id) => {
      setList((shown) => shown.map((n) => (sameId(n.id, id) ? { ...n, read: true } : n)));
      await api.markNotificationRead(id);
    },
    [api],
  );

  return { notifications: list, unread: list.filter((n) => !n.read).length, error, markRead };
}

/** Newest first, one entry per id; a read flag once set stays set. */
export function mergeNotifications(shown: Notification[], incoming: Notification[]): Notification[] {
  const byId = new Map<string, Notification>();
  for (const n of shown) byId.set(String(n.id), n);
  for (const n of incoming) {
    const before = byId.get(String(n.id));
    byId.set(String(n.id), before?.read ? { ...n, read: true } : n);
  }
  return [...byId.values()].sort((a, b) => new Date(b.timestamp).getTime() - new Date(a.timestamp).getTime());
}

// Other users' pointers over the board: volatile `cursorMove` out (at most one per frame
// interval), `cursorUpdate` in. A cursor fades when its user leaves or stops moving.

import { useCallback, useEffect, useRef, useState } from "react";
import { sameId, type CursorPosition, type CursorUpdate, type Id, type User } from "../types";
import { listen } from "./listen";
import { useRealtime } from "./SocketProvider";
import { useProjectRoom } from "./useProjectRoom";

export const CURSOR_TTL_MS = 10_000;
export const CURSOR_INTERVAL_MS = 50;

export interface Cursor extends CursorUpdate {
  seen: number;
}

export function useCursors(projectId: Id | null): {
  cursors: Cursor[];
  move: (taskId: Id | null, position: CursorPosition) => void;
} {
  const { socket, user } = useRealtime();
  useProjectRoom(projectId);
  const [cursors, setCursors] = useState<Map<string, Cursor>>(new Map());
  const lastSent = useRef(0);

  useEffect(() => {
    setCursors(new Map());
    if (projectId === null) return;
    const stop = listen(socket, {
      cursorUpdate: (e: CursorUpdate) => {
        if (e.projectId !== undefined && !sameId(e.projectId, projectId)) return;
        if (sameId(e.userId, user.userId)) return;
        setCursors((map) => new Map(map).set(String(e.userId), { ...e, seen: Date.now() }));
      },
      userLeft: (e: User & { projectId?: Id }) => {
        if (e.projectId !== undefined && !sameId(e.projectId, projectId)) return;
        setCursors((map) => {
          if (!map.has(String(e.userId))) return map;
          const next = new Map(map);
          next.delete(String(e.userId));
          return next;
        });
      },
    });
    const sweep = setInterval(() => {
      setCursors((map) => {
        const now = Date.now();
        const next = new Map([...map].filter(([, c]) => now - c.seen < CURSOR_TTL_MS));
        return next.size === map.size ? map : next;
      });
    }, 1000);
    return () => {
      stop();
      clearInterval(sweep);
    };
  }, [socket, user, projectId]);

  const move = useCallback(
    (taskId: Id | null, position: CursorPosition) => {
      if (projectId === null) return;
      const now = Date.now();
      if (now - lastSent.current < CURSOR_INTERVAL_MS) return;
      lastSent.current = now;
      socket.volatile.emit("cursorMove", { projectId, taskId, position });
    },
    [socket, projectId],
  );

  return { cursors: [...cursors.values()], move };
}

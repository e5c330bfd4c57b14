// A project's chat: history from REST (newest first on the wire, shown oldest first), live
// `newMessage`, sending with an ack, and typing in both directions. Each time the room is
// joined (the first time, and again after a reconnection) the latest page of history is
// fetched again and merged: a message said before the join, which the room did not bring,
// is in it, so nothing said meanwhile is missed.

import { useCallback, useEffect, useRef, useState } from "react";
import { sameId, type ChatMessage, type Id, type User } from "../types";
import { listen } from "./listen";
import { useRealtime } from "./SocketProvider";
import { useProjectRoom } from "./useProjectRoom";

export const HISTORY_PAGE = 50;
/** A typing indicator disappears after this long without news (its `false` may be dropped). */
export const TYPING_TTL_MS = 5000;
/** Sending `isTyping: false` after this long without a keystroke. */
export const TYPING_IDLE_MS = 2000;
export const SEND_TIMEOUT_MS = 5000;

export interface ProjectChat {
  messages: ChatMessage[];
  typing: User[];
  loading: boolean;
  error: string | null;
  hasOlder: boolean;
  loadOlder: () => Promise<void>;
  send: (message: string, replyTo?: Id | null) => Promise<Id>;
  /** Call on every keystroke with true, and with false when the input is cleared. */
  setTyping: (isTyping: boolean) => void;
}

type SendAnswer = { ok: true; id: Id } | { ok: false; error: string };

export function useProjectChat(projectId: Id | null): ProjectChat {
  const { socket, api, user } = useRealtime();
  const joined = useProjectRoom(projectId);
  const refetch = useRef<() => void>(() => {});
  const [messages, setMessages] = useState<ChatMessage[]>([]);
  const [typingUsers, setTypingUsers] = useState<Map<string, { user: User; until: number }>>(new Map());
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [hasOlder, setHasOlder] = useState(false);
  const typingState = useRef<{ sent: boolean; timer: ReturnType<typeof setTimeout> | null }>({
    sent: false,
    timer: null,
  });

  // history, and again after every reconnection
  useEffect(() => {
    setMessages([]);
    setTypingUsers(new Map());
    setError(null);
    if (projectId === null) return;
    let current = true;
    const fetchLatest = (): void => {
      setLoading(true);
      api.messages(projectId, { limit: HISTORY_PAGE }).then(
        (page) => {
          if (!current) return;
          setMessages((shown) => merge(shown, page));
          setHasOlder(page.length >= HISTORY_PAGE);
          setLoading(false);
          setError(null);
        },
        (err: Error) => {
          if (!current) return;
          setLoading(false);
          setError(err.message);
        },
      );
    };
    fetchLatest();
    refetch.current = fetchLatest;
    const stop = listen(socket, {
      newMessage: (m: ChatMessage) => {
        if (m.projectId !== undefined && !sameId(m.projectId, projectId)) return;
        setMessages((shown) => merge(shown, [m]));
        setTypingUsers((map) => without(map, m.userId));
      },
      userTyping: (e: User & { isTyping: boolean; projectId?: Id }) => {
        if (e.projectId !== undefined && !sameId(e.projectId, projectId)) return;
        if (sameId(e.userId, user.userId)) return;
        setTypingUsers((map) => {
          if (!e.isTyping) return without(map, e.userId);
          const next = new Map(map);
          next.set(String(e.userId), { user: { userId: e.userId, userName: e.userName }, until: Date.now() + TYPING_TTL_MS });
          return next;
        });
      },
    });
    const sweep = setInterval(() => {
      setTypingUsers((map) => {
        const now = Date.now();
        const stale = [...map.entries()].filter(([, t]) => t.until <= now);
        if (stale.length === 0) return map;
        const next = new Map(map);
        for (const [key] of stale) next.delete(key);
        return next;
      });
    }, 1000);
    const typing = typingState.current;
    return () => {
      current = false;
      refetch.current = () => {};
      stop();
      clearInterval(sweep);
      if (typing.timer) clearTimeout(typing.timer);
      typing.timer = null;
      typing.sent = false;
    };
  }, [socket, api, user, projectId]);

  // joined (or joined again after a reconnection): what was said before is fetched
  useEffect(() => {
    if (joined?.ok) refetch.current();
  }, [joined]);

  const setTyping = useCallback(
    (isTyping: boolean) => {
      if (projectId === null) return;
      const state = typingState.current;
      if (state.timer) clearTimeout(state.timer);
      state.timer = null;
      if (isTyping) {
        if (!state.sent) socket.volatile.emit("typing", { projectId, isTyping: true });
        state.sent = true;
        state.timer = setTimeout(() => {
          state.timer = null;
          state.sent = false;
          socket.volatile.emit("typing", { projectId, isTyping: false });
        }, TYPING_IDLE_MS);
      } else if (state.sent) {
        state.sent = false;
        socket.volatile.emit("typing", { projectId, isTyping: false });
      }
    },
    [socket, projectId],
  );

  const send = useCallback(
    async (message: string, replyTo: Id | null = null): Promise<Id> => {
      if (projectId === null) throw new Error("No project");
      setTyping(false);
      const payload: { projectId: Id; message: string; replyTo?: Id } = { projectId, message };
      if (replyTo !== null) payload.replyTo = replyTo;
      const answer = (await socket.timeout(SEND_TIMEOUT_MS).emitWithAck("chatMessage", payload)) as SendAnswer;
      if (!answer.ok) throw new Error(answer.error);
      return answer.id;
    },
    [socket, projectId, setTyping],
  );

  const loadOlder = useCallback(async () => {
    if (projectId === null || messages.length === 0) return;
    const page = await api.messages(projectId, { before: messages[0].id, limit: HISTORY_PAGE });
    setMessages((shown) => merge(shown, page));
    setHasOlder(page.length >= HISTORY_PAGE);
  }, [api, projectId, messages]);

  return {
    messages,
    typing: [...typingUsers.values()].map((t) => t.user),
    loading,
    error,
    hasOlder,
    loadOlder,
    send,
    setTyping,
  };
}

/** Shown messages plus new ones, without duplicates, oldest first. */
export function merge(shown: ChatMessage[], incoming: ChatMessage[]): ChatMessage[] {
  const byId = new Map<string, ChatMessage>();
  for (const m of shown) byId.set(String(m.id), m);
  for (const m of incoming) byId.set(String(m.id), m);
  return [...byId.values()].sort(compareMessages);
}

function compareMessages(a: ChatMessage, b: ChatMessage): number {
  const ta = new Date(a.timestamp).getTime();
  const tb = new Date(b.timestamp).getTime();
  if (ta !== tb && !Number.isNaN(ta) && !Number.isNaN(tb)) return ta - tb;
  const na = Number(a.id);
  const nb = Number(b.id);
  if (!Number.isNaN(na) && !Number.isNaN(nb)) return na - nb;
  return String(a.id).localeCompare(String(b.id));
}

function without<T>(map: Map<string, T>, userId: Id): Map<string, T> {
  if (!map.has(String(userId))) return map;
  const next = new Map(map);
  next.delete(String(userId));
  return next;
}

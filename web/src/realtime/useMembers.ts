// A project's members (everyone who belongs to it, online or not): fetched from REST, kept
// current by `memberAdded` and `memberRemoved` to the project room, and fetched again each
// time the room is joined (first, and after a reconnection). Admins add and remove them.

import { useCallback, useEffect, useRef, useState } from "react";
import { sameId, type Id, type Member, type MemberAdded, type MemberRemoved } from "../types";
import { listen } from "./listen";
import { useRealtime } from "./SocketProvider";
import { useProjectRoom } from "./useProjectRoom";

export interface Members {
  members: Member[];
  error: string | null;
  addMember: (member: { userId: string; userName: string }) => Promise<void>;
  removeMember: (userId: Id) => Promise<void>;
}

export function useMembers(projectId: Id | null): Members {
  const { socket, api } = useRealtime();
  const joined = useProjectRoom(projectId);
  const [members, setMembers] = useState<Member[]>([]);
  const [error, setError] = useState<string | null>(null);
  const refetch = useRef<() => void>(() => {});

  useEffect(() => {
    setMembers([]);
    setError(null);
    if (projectId === null) return;
    let current = true;
    const fetchMembers = (): void => {
      api.members(projectId).then(
        (list) => {
          if (!current) return;
          setMembers(list);
          setError(null);
        },
        (err: Error) => current && setError(err.message),
      );
    };
    fetchMembers();
    refetch.current = fetchMembers;
    const stop = listen(socket, {
      memberAdded: (e: MemberAdded) => {
        if (!sameId(e.projectId, projectId)) return;
        setMembers((list) => withMember(list, { userId: e.userId, userName: e.userName }));
      },
      memberRemoved: (e: MemberRemoved) => {
        if (!sameId(e.projectId, projectId)) return;
        setMembers((list) => list.filter((m) => !sameId(m.userId, e.userId)));
      },
    });
    return () => {
      current = false;
      refetch.current = () => {};
      stop();
    };
  }, [socket, api, projectId]);

  useEffect(() => {
    if (joined?.ok) refetch.current();
  }, [joined]);

  const addMember = useCallback(
    async (member: { userId: string; userName: string }): Promise<void> => {
      if (projectId === null) throw new Error("No project");
      const added = await api.addMember(projectId, member);
      setMembers((list) => withMember(list, added));
    },
    [api, projectId],
  );

  const removeMember = useCallback(
    async (userId: Id): Promise<void> => {
      if (projectId === null) throw new Error("No project");
      await api.removeMember(projectId, userId);
      setMembers((list) => list.filter((m) => !sameId(m.userId, userId)));
    },
    [api, projectId],
  );

  return { members, error, addMember, removeMember };
}

/** Adding again renames: one entry per user id, the newest name, in the list's order. */
export function withMember(list: Member[], member: Member): Member[] {
  const at = list.findIndex((m) => sameId(m.userId, member.userId));
  if (at === -1) return [...list, member];
  const next = [...list];
  next[at] = { ...next[at], ...member };
  return next;
}

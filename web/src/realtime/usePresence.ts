// Who is in the project now: the join's `onlineMembers`, then `userJoined` and `userLeft`.
// Presence is per user (the hub announces a user once, however many tabs they have).

import { useEffect, useState } from "react";
import { sameId, type Id, type User } from "../types";
import { listen } from "./listen";
import { useRealtime } from "./SocketProvider";
import { useProjectRoom } from "./useProjectRoom";

interface PresenceEvent extends User {
  projectId?: Id;
}

export function usePresence(projectId: Id | null): { members: User[]; error: string | null } {
  const { socket } = useRealtime();
  const joined = useProjectRoom(projectId);
  const [members, setMembers] = useState<User[]>([]);

  useEffect(() => {
    setMembers(joined?.ok ? dedupe(joined.onlineMembers) : []);
  }, [joined]);

  useEffect(() => {
    if (projectId === null) return;
    const mine = (e: PresenceEvent): boolean => e.projectId === undefined || sameId(e.projectId, projectId);
    return listen(socket, {
      userJoined: (e: PresenceEvent) => {
        if (!mine(e)) return;
        setMembers((list) => dedupe([...list, { userId: e.userId, userName: e.userName }]));
      },
      userLeft: (e: PresenceEvent) => {
        if (!mine(e)) return;
        setMembers((list) => list.filter((m) => !sameId(m.userId, e.userId)));
      },
    });
  }, [socket, projectId]);

  return { members, error: joined && !joined.ok ? joined.error : null };
}

function dedupe(list: User[]): User[] {
  const seen = new Map<string, User>();
  for (const user of list) seen.set(String(user.userId), user);
  return [...seen.values()];
}

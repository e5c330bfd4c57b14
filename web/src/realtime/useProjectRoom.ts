import { useEffect, useState } from "react";
import type { Id, JoinResult } from "../types";
import { useRealtime } from "./SocketProvider";

/** Holds the project's room while mounted; the latest join answer, or null before it. */
export function useProjectRoom(projectId: Id | null): JoinResult | null {
  const { rooms } = useRealtime();
  const [result, setResult] = useState<JoinResult | null>(null);
  useEffect(() => {
    setResult(null);
    if (projectId === null) return;
    return rooms.acquire(projectId, setResult);
  }, [rooms, projectId]);
  return result;
}

// Project rooms, shared by every hook on the page. The first hook that needs a project
// joins it; the last one to let go leaves it. After a reconnection the hub has forgotten the
// socket's rooms, so every held project is joined again on `connect`; each join's answer
// (`onlineMembers`) goes to the hooks holding that project.

import type { Socket } from "socket.io-client";
import type { Id, JoinResult } from "../types";

type Subscriber = (result: JoinResult) => void;

interface Held {
  id: Id;
  subscribers: Set<Subscriber>;
  last: JoinResult | null;
}

export const JOIN_TIMEOUT_MS = 5000;

export class ProjectRooms {
  private readonly held = new Map<string, Held>();
  private readonly onConnect = (): void => {
    for (const key of this.held.keys()) this.join(key);
  };

  constructor(private readonly socket: Socket) {}

  /** Start rejoining on every connection; returns the matching stop. */
  attach(): () => void {
    this.socket.on("connect", this.onConnect);
    return () => {
      this.socket.off("connect", this.onConnect);
    };
  }

  /** Hold ``projectId`` while the returned release has not been called. */
  acquire(projectId: Id, subscriber: Subscriber): () => void {
    const key = String(projectId);
    let entry = this.held.get(key);
    if (!entry) {
      entry = { id: projectId, subscribers: new Set(), last: null };
      this.held.set(key, entry);
      if (this.socket.connected) this.join(key);
    } else if (entry.last) {
      subscriber(entry.last);
    }
    entry.subscribers.add(subscriber);
    const held = entry;
    return () => {
      held.subscribers.delete(subscriber);
      if (held.subscribers.size === 0 && this.held.get(key) === held) {
        this.held.delete(key);
        if (this.socket.connected) this.socket.emit("leaveProject", held.id);
      }
    };
  }

  heldProjects(): string[] {
    return [...this.held.keys()];
  }

  private join(key: string): void {
    const entry = this.held.get(key);
    if (!entry) return;
    this.socket
      .timeout(JOIN_TIMEOUT_MS)
      .emit("joinProject", entry.id, (err: Error | null, result?: JoinResult) => {
        const current = this.held.get(key);
        if (current !== entry) return; // released (or re-acquired) in the meantime
        const answer: JoinResult = err
          ? { ok: false, error: "The server did not answer the join" }
          : (result ?? { ok: false, error: "No answer" });
        entry.last = answer;
        for (const subscriber of entry.subscribers) subscriber(answer);
      });
  }
}

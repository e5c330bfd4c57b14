// Who is signed in. In dev mode (`python -m server --dev`) the app port issues tokens at
// `POST /api/dev/token` ({userId, userName} -> {token, userId, userName, role, projectId})
// and makes the user a member of the demo project; refreshing asks again for the same user. The session is
// kept in sessionStorage, so a reload keeps it and each tab can be someone else.

import { readJson, type TokenSource } from "./api";
import type { User } from "./types";

export interface SessionData {
  token: string;
  user: User;
}

const KEY = "trio-hub.session";

export interface DevTokenAnswer {
  token: string;
  userId: string;
  userName: string;
  role: string;
  projectId: number;
}

/** A user id for a typed name: "Ada Lovelace" -> "ada-lovelace". */
export function userIdFor(name: string): string {
  return name.trim().toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "user";
}

export async function devSignIn(user: { userId: string; userName?: string }, base = ""): Promise<SessionData> {
  const response = await fetch(`${base}/api/dev/token`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(user),
  });
  const answer = await readJson<DevTokenAnswer>(response);
  return { token: answer.token, user: { userId: answer.userId, userName: answer.userName } };
}

export class Session implements TokenSource {
  private current: SessionData;
  private refreshing: Promise<string> | null = null;

  constructor(
    data: SessionData,
    private readonly renew: (user: User) => Promise<SessionData> = (user) => devSignIn({ userId: String(user.userId), userName: user.userName }),
    private readonly storage: Storage | null = typeof sessionStorage === "undefined" ? null : sessionStorage,
  ) {
    this.current = data;
    this.storage?.setItem(KEY, JSON.stringify(data));
  }

  get user(): User {
    return this.current.user;
  }

  token(): string {
    return this.current.token;
  }

  refresh(): Promise<string> {
    // concurrent callers (a REST 401 and a socket refusal at once) share one request
    this.refreshing ??= this.renew(this.current.user)
      .then((data) => {
        this.current = { token: data.token, user: this.current.user };
        this.storage?.setItem(KEY, JSON.stringify(this.current));
        return data.token;
      })
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }

  static restore(storage: Storage | null = typeof sessionStorage === "undefined" ? null : sessionStorage): SessionData | null {
    const raw = storage?.getItem(KEY);
    if (!raw) return null;
    try {
      const data = JSON.parse(raw) as SessionData;
      return data.token && data.user ? data : null;
    } catch {
      return null;
    }
  }

  static forget(storage: Storage | null = typeof sessionStorage === "undefined" ? null : sessionStorage): void {
    storage?.removeItem(KEY);
  }
}

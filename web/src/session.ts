// Who is signed in. In dev mode (`python -m server --dev`) the app port issues tokens at
// `POST /api/dev/token` ({userId, userName} -> {token, userId, userName, role, projectId})
// and makes the user a member of the demo project; refreshing asks again for the same user. The session is
// kept in sessionStorage, so a reload keeps it and each tab can be someone else.

import { readJson, type TokenSource } from "./api";
import type { User } from "./types";

export interface SessionData {
  token: string;
  user: User;
  /** "dev": tokens from POST /api/dev/token, renewable; "token": pasted, not renewable. */
  mode?: "dev" | "token";
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
  return { token: answer.token, user: { userId: answer.userId, userName: answer.userName }, mode: "dev" };
}

/** Outside dev mode: a token issued elsewhere, checked with `GET /api/me`. */
export async function tokenSignIn(token: string, base = ""): Promise<SessionData> {
  const response = await fetch(`${base}/api/me`, { headers: { Authorization: `Bearer ${token}` } });
  const me = await readJson<{ userId: string; userName: string }>(response);
  return { token, user: { userId: me.userId, userName: me.userName }, mode: "token" };
}

export class SignInAgain extends Error {
  constructor() {
    super("This token is no longer accepted: sign in again");
    this.name = "SignInAgain";
  }
}

function renewFor(data: SessionData): (user: User) => Promise<SessionData> {
  if (data.mode === "token") return () => Promise.reject(new SignInAgain());
  return (user) => devSignIn({ userId: String(user.userId), userName: user.userName });
}

export class Session implements TokenSource {
  private current: SessionData;
  private refreshing: Promise<string> | null = null;

  constructor(
    data: SessionData,
    private readonly renew: (user: User) => Promise<SessionData> = renewFor(data),
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
        this.current = { ...this.current, token: data.token };
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

// Who is signed in. In dev mode (`python -m server --dev`) the app port issues tokens for
// any name at `POST /api/dev/token`; refreshing asks again for the same user. The session is
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
  user?: Partial<User>;
  userId?: User["userId"];
  userName?: string;
}

export async function devSignIn(userName: string, base = ""): Promise<SessionData> {
  const response = await fetch(`${base}/api/dev/token`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ userName }),
  });
  const answer = await readJson<DevTokenAnswer>(response);
  const user = answer.user ?? {};
  return {
    token: answer.token,
    user: {
      userId: user.userId ?? answer.userId ?? userName,
      userName: user.userName ?? answer.userName ?? userName,
    },
  };
}

export class Session implements TokenSource {
  private current: SessionData;
  private refreshing: Promise<string> | null = null;

  constructor(
    data: SessionData,
    private readonly renew: (user: User) => Promise<SessionData> = (user) => devSignIn(user.userName),
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

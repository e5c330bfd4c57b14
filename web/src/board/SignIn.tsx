import { useState, type FormEvent } from "react";
import { ApiError } from "../api";
import { devSignIn, tokenSignIn, userIdFor, type SessionData } from "../session";

// the demo users `python -m server --dev` seeds (server/realtime/demo.py)
const DEMO_USERS = [
  { userId: "alice", label: "Alice (admin)" },
  { userId: "bob", label: "Bob" },
];

export function SignIn({ onSignedIn }: { onSignedIn: (data: SessionData) => void }) {
  const [name, setName] = useState("");
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const attempt = async (how: () => Promise<SessionData>, notFound: string): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await how());
    } catch (err) {
      setError(err instanceof ApiError && err.status === 404 ? notFound : (err as Error).message);
      setBusy(false);
    }
  };
  const signIn = (user: { userId: string; userName?: string }): Promise<void> =>
    attempt(
      () => devSignIn(user),
      "This server is not in development mode: start it with `make run ARGS=--dev`, or sign in with a token below.",
    );
  const submitToken = (e: FormEvent): void => {
    e.preventDefault();
    if (token.trim()) void attempt(() => tokenSignIn(token.trim()), "The server has no REST API here.");
  };

  const submit = (e: FormEvent): void => {
    e.preventDefault();
    if (name.trim()) void signIn({ userId: userIdFor(name), userName: name.trim() });
  };

  return (
    <main className="sign-in">
      <h1>Project board</h1>
      <p className="muted">
        In development mode (<code>--dev</code>), pick a demo user or type any name: it joins the demo project. Otherwise,
        paste a token signed with the server's <code>JWT_SECRET</code>.
      </p>
      <div className="demo-users">
        {DEMO_USERS.map((user) => (
          <button key={user.userId} type="button" disabled={busy} onClick={() => void signIn(user)} data-testid={`sign-in-${user.userId}`}>
            {user.label}
          </button>
        ))}
      </div>
      <form onSubmit={submit}>
        <label>
          Name <input value={name} onChange={(e) => setName(e.target.value)} disabled={busy} data-testid="sign-in-name" />
        </label>
        <button type="submit" disabled={busy || !name.trim()}>
          Sign in
        </button>
      </form>
      <form onSubmit={submitToken}>
        <label>
          Token <input value={token} onChange={(e) => setToken(e.target.value)} disabled={busy} placeholder="a JWT" data-testid="sign-in-token" />
        </label>
        <button type="submit" disabled={busy || !token.trim()}>
          Use token
        </button>
      </form>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </main>
  );
}

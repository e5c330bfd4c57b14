import { useState, type FormEvent } from "react";
import { devSignIn, userIdFor, type SessionData } from "../session";

// the demo users `python -m server --dev` seeds (server/realtime/demo.py)
const DEMO_USERS = [
  { userId: "alice", label: "Alice (admin)" },
  { userId: "bob", label: "Bob" },
];

export function SignIn({ onSignedIn }: { onSignedIn: (data: SessionData) => void }) {
  const [name, setName] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const signIn = async (user: { userId: string; userName?: string }): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await devSignIn(user));
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  };

  const submit = (e: FormEvent): void => {
    e.preventDefault();
    if (name.trim()) void signIn({ userId: userIdFor(name), userName: name.trim() });
  };

  return (
    <main className="sign-in">
      <h1>Project board</h1>
      <p className="muted">Development sign-in: pick a demo user, or type any name (it joins the demo project).</p>
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
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </main>
  );
}

import { useState, type FormEvent } from "react";
import { devSignIn, type SessionData } from "../session";

const DEMO_USERS = ["alice", "bob", "carol"];

export function SignIn({ onSignedIn }: { onSignedIn: (data: SessionData) => void }) {
  const [name, setName] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const signIn = async (userName: string): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await devSignIn(userName.trim()));
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  };

  const submit = (e: FormEvent): void => {
    e.preventDefault();
    if (name.trim()) void signIn(name);
  };

  return (
    <main className="sign-in">
      <h1>Project board</h1>
      <p className="muted">Development sign-in: pick a demo user, or type any name.</p>
      <div className="demo-users">
        {DEMO_USERS.map((user) => (
          <button key={user} type="button" disabled={busy} onClick={() => void signIn(user)} data-testid={`sign-in-${user}`}>
            {user}
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

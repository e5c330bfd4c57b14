import { useState, type FormEvent } from "react";
import { useRealtime, type Members } from "../realtime";
import { sameId, type Project } from "../types";
import { userIdFor } from "../session";

interface Props {
  project: Project | null;
  members: Members;
  createProject: (name: string) => Promise<Project>;
  /** A project was created: show it. */
  onCreated: (project: Project) => void;
  onClose: () => void;
}

/** For admins: a new project; the current project's members, added and removed. */
export function AdminPanel({ project, members, createProject, onCreated, onClose }: Props) {
  const { user } = useRealtime();
  const [name, setName] = useState("");
  const [memberName, setMemberName] = useState("");
  const [memberId, setMemberId] = useState("");
  const [idTouched, setIdTouched] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const attempt = async (work: () => Promise<void>): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      await work();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  const create = (e: FormEvent): void => {
    e.preventDefault();
    if (!name.trim()) return;
    void attempt(async () => {
      const created = await createProject(name.trim());
      setName("");
      onCreated(created);
    });
  };

  const add = (e: FormEvent): void => {
    e.preventDefault();
    if (!memberId.trim() || !memberName.trim()) return;
    void attempt(async () => {
      await members.addMember({ userId: memberId.trim(), userName: memberName.trim() });
      setMemberId("");
      setMemberName("");
      setIdTouched(false);
    });
  };

  return (
    <section className="admin" role="dialog" aria-label="Projects and members" data-testid="admin-panel">
      <header className="row">
        <h2>Administration</h2>
        <span className="spacer" />
        <button type="button" className="link" onClick={onClose} data-testid="admin-close">
          Close
        </button>
      </header>

      <form onSubmit={create} className="stack">
        <h3>New project</h3>
        <div className="row">
          <input value={name} onChange={(e) => setName(e.target.value)} placeholder="Project name" aria-label="Project name" data-testid="admin-project-name" />
          <button type="submit" disabled={busy || !name.trim()} data-testid="admin-create-project">
            Create
          </button>
        </div>
      </form>

      {project && (
        <div className="stack">
          <h3>Members of “{project.name}”</h3>
          {members.error && <p className="error">{members.error}</p>}
          <ul className="member-list" data-testid="admin-members">
            {members.members.map((m) => (
              <li key={String(m.userId)} data-testid="admin-member" data-user-id={String(m.userId)}>
                <span>
                  <strong>{m.userName}</strong> <span className="muted">{String(m.userId)}</span>
                  {sameId(m.userId, user.userId) && <span className="muted"> (you)</span>}
                </span>
                <button
                  type="button"
                  className="link danger"
                  disabled={busy}
                  onClick={() => void attempt(() => members.removeMember(m.userId))}
                  aria-label={`Remove ${m.userName} from ${project.name}`}
                  data-testid="admin-remove-member"
                >
                  Remove
                </button>
              </li>
            ))}
          </ul>
          <form onSubmit={add} className="stack">
            <h3>Add a member</h3>
            <input
              value={memberName}
              onChange={(e) => {
                setMemberName(e.target.value);
                if (!idTouched) setMemberId(e.target.value.trim() ? userIdFor(e.target.value) : "");
              }}
              placeholder="Name, e.g. Bob"
              aria-label="Member's name"
              data-testid="admin-member-name"
            />
            <div className="row">
              <input
                value={memberId}
                onChange={(e) => {
                  setMemberId(e.target.value);
                  setIdTouched(true);
                }}
                placeholder="User id, e.g. bob"
                aria-label="Member's user id"
                data-testid="admin-member-id"
              />
              <button type="submit" disabled={busy || !memberId.trim() || !memberName.trim()} data-testid="admin-add-member">
                Add
              </button>
            </div>
          </form>
        </div>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

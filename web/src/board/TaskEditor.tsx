import { useState, type FormEvent } from "react";
import type { Task, User } from "../types";

interface Props {
  task: Task;
  members: User[];
  columns: { status: string; title: string }[];
  onSave: (changes: Partial<Task>) => Promise<void>;
  onCancel: () => void;
}

/** Sends only the fields that changed, so `taskUpdated` tells the others exactly that. */
export function TaskEditor({ task, members, columns, onSave, onCancel }: Props) {
  const [title, setTitle] = useState(task.title);
  const [description, setDescription] = useState(task.description ?? "");
  const [status, setStatus] = useState(task.status ?? "");
  const [assigneeId, setAssigneeId] = useState(task.assigneeId == null ? "" : String(task.assigneeId));
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    const changes: Partial<Task> = {};
    if (title !== task.title) changes.title = title;
    if (description !== (task.description ?? "")) changes.description = description;
    if (status !== (task.status ?? "")) changes.status = status;
    const assignee = assigneeId === "" ? null : assigneeId;
    if (String(assignee) !== String(task.assigneeId ?? null)) changes.assigneeId = assignee;
    if (Object.keys(changes).length === 0) return onCancel();
    setBusy(true);
    setError(null);
    try {
      await onSave(changes);
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  };

  return (
    <form className="card editing" data-task-id={String(task.id)} onSubmit={(e) => void submit(e)} data-testid="task-editor">
      <input value={title} onChange={(e) => setTitle(e.target.value)} aria-label="Title" data-testid="edit-title" required />
      <textarea value={description} onChange={(e) => setDescription(e.target.value)} aria-label="Description" rows={3} />
      <div className="row">
        <select value={status} onChange={(e) => setStatus(e.target.value)} aria-label="Status" data-testid="edit-status">
          {columns.map((c) => (
            <option key={c.status} value={c.status}>
              {c.title}
            </option>
          ))}
        </select>
        <select value={assigneeId} onChange={(e) => setAssigneeId(e.target.value)} aria-label="Assignee" data-testid="edit-assignee">
          <option value="">unassigned</option>
          {members.map((m) => (
            <option key={String(m.userId)} value={String(m.userId)}>
              {m.userName}
            </option>
          ))}
        </select>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <div className="row">
        <button type="submit" disabled={busy} data-testid="edit-save">
          Save
        </button>
        <button type="button" className="link" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

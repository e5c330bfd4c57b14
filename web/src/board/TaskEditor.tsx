import { useEffect, useRef, useState, type FormEvent } from "react";
import { TaskConflict } from "../realtime";
import type { Task, TaskUpdated, User } from "../types";
import { changedWhile, type Names } from "./notices";

interface Props {
  /** The task as the board shows it now (it follows others' changes). */
  task: Task;
  members: User[];
  columns: { status: string; title: string }[];
  /** The latest change someone else made to this task, if the board heard of one. */
  heard: TaskUpdated | null;
  names: Names;
  /** `base`: the task the changes were made on; refused (TaskConflict) when it is no longer current. */
  onSave: (changes: Partial<Task>, base: Task) => Promise<void>;
  onDelete: () => Promise<void>;
  onCancel: () => void;
}

interface Draft {
  title: string;
  description: string;
  status: string;
  assigneeId: string;
}

const draftOf = (task: Task): Draft => ({
  title: task.title,
  description: task.description ?? "",
  status: task.status ?? "",
  assigneeId: task.assigneeId == null ? "" : String(task.assigneeId),
});

const isNewer = (live: Task, base: Task): boolean =>
  typeof live.version === "number" && typeof base.version === "number"
    ? live.version > base.version
    : JSON.stringify(draftOf(live)) !== JSON.stringify(draftOf(base));

/** Sends only the fields that changed, so `taskUpdated` tells the others exactly that, with the
 * version the editor was opened on: if someone changed the task meanwhile, the editor says so
 * and nothing of theirs is overwritten. */
export function TaskEditor({ task, members, columns, heard, names, onSave, onDelete, onCancel }: Props) {
  // the task the user's edits apply to: as it was when the editor opened (or last refused)
  const [base, setBase] = useState<Task>(task);
  const [draft, setDraft] = useState<Draft>(() => draftOf(task));
  const [error, setError] = useState<string | null>(null);
  const [refused, setRefused] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [by, setBy] = useState<User | null>(null);
  // a change heard before the editor opened is not one made while editing
  const before = useRef(heard);

  useEffect(() => {
    if (heard && heard !== before.current && typeof heard.updatedBy === "object") setBy(heard.updatedBy);
  }, [heard]);

  const changedMeanwhile = !refused && isNewer(task, base) ? changedWhile(by, base, task, "edit", names) : null;
  const set = (field: keyof Draft) => (value: string) => setDraft((d) => ({ ...d, [field]: value }));

  /** Start again from the current task, keeping what the user changed. */
  const rebase = (current: Task): void => {
    const before = draftOf(base);
    const now = draftOf(current);
    setDraft((d) => {
      const next = { ...d };
      for (const key of Object.keys(d) as (keyof Draft)[]) if (d[key] === before[key]) next[key] = now[key];
      return next;
    });
    setBase(current);
  };

  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    const changes: Partial<Task> = {};
    const was = draftOf(base);
    if (draft.title !== was.title) changes.title = draft.title;
    if (draft.description !== was.description) changes.description = draft.description;
    if (draft.status !== was.status) changes.status = draft.status;
    if (draft.assigneeId !== was.assigneeId) changes.assigneeId = draft.assigneeId === "" ? null : draft.assigneeId;
    if (Object.keys(changes).length === 0 && !isNewer(task, base)) return onCancel();
    if (Object.keys(changes).length === 0) {
      rebase(task);
      return;
    }
    setBusy(true);
    setError(null);
    setRefused(null);
    try {
      await onSave(changes, base);
    } catch (err) {
      setBusy(false);
      if (err instanceof TaskConflict) {
        const notice = err.notice;
        setRefused(`${changedWhile(notice.by ?? by, base, notice.task, "edit", names)}. Your changes were not saved: check them and save again.`);
        rebase(notice.task);
      } else {
        setError((err as Error).message);
      }
    }
  };

  const remove = async (): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      await onDelete();
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
      setConfirmDelete(false);
    }
  };

  return (
    <form className="card editing" data-task-id={String(task.id)} data-item="" onSubmit={(e) => void submit(e)} data-testid="task-editor">
      {(refused ?? changedMeanwhile) && (
        <p className="notice" role="status" data-testid="editor-notice">
          {refused ?? `${changedMeanwhile}.`}{" "}
          {!refused && (
            <button type="button" className="link" onClick={() => rebase(task)} data-testid="editor-take-theirs">
              Show their version
            </button>
          )}
        </p>
      )}
      <input value={draft.title} onChange={(e) => set("title")(e.target.value)} aria-label="Title" data-testid="edit-title" required />
      <textarea value={draft.description} onChange={(e) => set("description")(e.target.value)} aria-label="Description" rows={3} data-testid="edit-description" />
      <div className="row wrap">
        <select value={draft.status} onChange={(e) => set("status")(e.target.value)} aria-label="Status" data-testid="edit-status">
          {columns.map((c) => (
            <option key={c.status} value={c.status}>
              {c.title}
            </option>
          ))}
        </select>
        <select value={draft.assigneeId} onChange={(e) => set("assigneeId")(e.target.value)} aria-label="Assignee" data-testid="edit-assignee">
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
      <div className="row wrap">
        <button type="submit" disabled={busy} data-testid="edit-save">
          Save
        </button>
        <button type="button" className="link" onClick={onCancel}>
          Cancel
        </button>
        <span className="spacer" />
        {confirmDelete ? (
          <button type="button" className="danger" disabled={busy} onClick={() => void remove()} data-testid="edit-delete-confirm">
            Delete for everyone
          </button>
        ) : (
          <button type="button" className="link danger" onClick={() => setConfirmDelete(true)} data-testid="edit-delete">
            Delete
          </button>
        )}
      </div>
    </form>
  );
}

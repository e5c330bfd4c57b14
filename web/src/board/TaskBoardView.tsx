import { useEffect, useRef, useState, type FormEvent, type MouseEvent } from "react";
import { useCursors, useRealtime, useTaskBoard } from "../realtime";
import { sameId, type Id, type Task, type User } from "../types";
import { TaskEditor } from "./TaskEditor";

export const COLUMNS: { status: string; title: string }[] = [
  { status: "todo", title: "To do" },
  { status: "in_progress", title: "In progress" },
  { status: "done", title: "Done" },
];

/** `shownTask`: a task to bring into view and mark (a notification's link opened it). */
export function TaskBoardView({ projectId, shownTask = null }: { projectId: Id; shownTask?: string | null }) {
  const { api } = useRealtime();
  const { tasks, loading, error, lastUpdate, updateTask, createTask } = useTaskBoard(projectId);
  const { cursors, move } = useCursors(projectId);
  const [members, setMembers] = useState<User[]>([]);
  const [editing, setEditing] = useState<Id | null>(null);
  const board = useRef<HTMLDivElement>(null);
  const hasShownTask = shownTask !== null && tasks.some((t) => String(t.id) === shownTask);

  useEffect(() => {
    if (!hasShownTask || shownTask === null) return;
    const card = board.current?.querySelector<HTMLElement>(`[data-task-id="${CSS.escape(shownTask)}"]`);
    card?.scrollIntoView?.({ block: "center", behavior: "smooth" });
    card?.focus({ preventScroll: true });
  }, [hasShownTask, shownTask]);

  useEffect(() => {
    let current = true;
    api.members(projectId).then(
      (list) => current && setMembers(list),
      () => current && setMembers([]),
    );
    return () => {
      current = false;
    };
  }, [api, projectId]);

  const onMouseMove = (e: MouseEvent<HTMLDivElement>): void => {
    const rect = board.current?.getBoundingClientRect();
    if (!rect || rect.width === 0 || rect.height === 0) return;
    const card = (e.target as HTMLElement).closest<HTMLElement>("[data-task-id]");
    const taskId = card?.dataset.taskId ?? null;
    move(taskId === null ? null : Number.isNaN(Number(taskId)) ? taskId : Number(taskId), {
      x: round((e.clientX - rect.left) / rect.width),
      y: round((e.clientY - rect.top) / rect.height),
    });
  };

  const nameOf = (userId: Id | null | undefined): string =>
    members.find((m) => sameId(m.userId, userId))?.userName ?? (userId ? String(userId) : "unassigned");
  const known = new Set(COLUMNS.map((c) => c.status));
  const columns = [...COLUMNS, ...[...new Set(tasks.map((t) => t.status ?? ""))].filter((s) => !known.has(s)).map((s) => ({ status: s, title: s || "No status" }))];

  return (
    <section className="board-wrap" aria-label="Tasks">
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {loading && tasks.length === 0 && <p className="muted">Loading tasks…</p>}
      <div className="board" ref={board} onMouseMove={onMouseMove} data-testid="board">
        {columns.map((column) => (
          <div className="column" key={column.status} data-status={column.status}>
            <h2>
              {column.title} <span className="count">{tasks.filter((t) => (t.status ?? "") === column.status).length}</span>
            </h2>
            {column.status === "todo" && <NewTask onCreate={(title) => createTask({ title, status: "todo" })} />}
            {tasks
              .filter((t) => (t.status ?? "") === column.status)
              .map((task) =>
                sameId(editing, task.id) ? (
                  <TaskEditor
                    key={String(task.id)}
                    task={task}
                    members={members}
                    columns={columns}
                    onCancel={() => setEditing(null)}
                    onSave={async (changes) => {
                      await updateTask(task.id, changes);
                      setEditing(null);
                    }}
                  />
                ) : (
                  <TaskCard
                    key={String(task.id)}
                    task={task}
                    assignee={nameOf(task.assigneeId)}
                    fresh={lastUpdate !== null && sameId(lastUpdate.taskId, task.id)}
                    shown={shownTask !== null && String(task.id) === shownTask}
                    onEdit={() => setEditing(task.id)}
                  />
                ),
              )}
          </div>
        ))}
        {cursors.map((c) => (
          <div
            key={String(c.userId)}
            className="cursor"
            style={{ left: `${c.position.x * 100}%`, top: `${c.position.y * 100}%` }}
            data-testid="remote-cursor"
            data-user-id={String(c.userId)}
          >
            <span className="cursor-dot" />
            <span className="cursor-label">{c.userName}</span>
          </div>
        ))}
      </div>
    </section>
  );
}

function NewTask({ onCreate }: { onCreate: (title: string) => Promise<unknown> }) {
  const [title, setTitle] = useState("");
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    if (!title.trim()) return;
    setError(null);
    try {
      await onCreate(title.trim());
      setTitle("");
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <form className="new-task" onSubmit={(e) => void submit(e)}>
      <input value={title} onChange={(e) => setTitle(e.target.value)} placeholder="Add a task…" aria-label="New task" data-testid="new-task" />
      {error && <p className="error">{error}</p>}
    </form>
  );
}

function TaskCard({ task, assignee, fresh, shown, onEdit }: { task: Task; assignee: string; fresh: boolean; shown: boolean; onEdit: () => void }) {
  return (
    <article
      className={`card${fresh ? " fresh" : ""}${shown ? " shown" : ""}`}
      data-task-id={String(task.id)}
      data-testid="task-card"
      data-shown={shown ? "true" : undefined}
      tabIndex={shown ? -1 : undefined}
    >
      <h3 data-testid="task-title">{task.title}</h3>
      {task.description && <p className="desc">{task.description}</p>}
      <footer>
        <span className="muted" data-testid="task-assignee">
          {assignee}
        </span>
        <button type="button" className="link" onClick={onEdit} data-testid="task-edit">
          Edit
        </button>
      </footer>
    </article>
  );
}

const round = (n: number): number => Math.round(Math.min(1, Math.max(0, n)) * 1000) / 1000;

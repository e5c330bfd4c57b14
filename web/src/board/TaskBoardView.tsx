import { useCallback, useEffect, useRef, useState, type FormEvent, type KeyboardEvent, type MouseEvent, type PointerEvent as ReactPointerEvent } from "react";
import { useCursors, useRealtime, useTaskBoard, type CardNotice } from "../realtime";
import { sameId, type Id, type Task, type TaskUpdated, type User } from "../types";
import { noticeText, type Names } from "./notices";
import { columnCards, placeOf, positionFor, stepPlace, type Place } from "./positions";
import { TaskEditor } from "./TaskEditor";

export const COLUMNS: { status: string; title: string }[] = [
  { status: "todo", title: "To do" },
  { status: "in_progress", title: "In progress" },
  { status: "done", title: "Done" },
];

/** How far (px) a pointer travels before a press on a card becomes a drag. */
const DRAG_THRESHOLD = 5;
/** Near this many px of the board's edge, a drag scrolls it. */
const SCROLL_EDGE = 40;

/** A card on the move: by pointer (drawn under it) or by keyboard (a slot shows where it goes). */
interface Drag {
  taskId: Id;
  title: string;
  mode: "pointer" | "keyboard";
  from: Place;
  to: Place;
  /** pointer mode: where the picture of the card under the pointer is drawn */
  box?: { left: number; top: number; width: number };
}

/** `shownTask`: a task to bring into view and mark (a notification's link opened it). */
export function TaskBoardView({ projectId, members, shownTask = null }: { projectId: Id; members: User[]; shownTask?: string | null }) {
  const { user } = useRealtime();
  const { tasks, loading, error, lastUpdate, lastDeleted, notices, dismissNotice, updateTask, moveTask, createTask, deleteTask } = useTaskBoard(projectId);
  const { cursors, move } = useCursors(projectId);
  const [editing, setEditing] = useState<Id | null>(null);
  const [drag, setDragState] = useState<Drag | null>(null);
  const [said, say] = useState("");
  const board = useRef<HTMLDivElement>(null);
  const wrap = useRef<HTMLElement>(null);
  const dragging = useRef<Drag | null>(null);
  const latest = useRef<Task[]>(tasks);
  const stopPointer = useRef<(() => void) | null>(null);
  const refocus = useRef<Id | null>(null);
  const hasShownTask = shownTask !== null && tasks.some((t) => String(t.id) === shownTask);

  const setDrag = useCallback((d: Drag | null) => {
    dragging.current = d;
    setDragState(d);
  }, []);

  useEffect(() => {
    latest.current = tasks;
    // after a keyboard drop the card is drawn in its new column: the focus goes with it
    if (refocus.current === null) return;
    const handle = board.current?.querySelector<HTMLElement>(`[data-task-id="${CSS.escape(String(refocus.current))}"] [data-drag-handle]`);
    if (handle && document.activeElement !== handle) handle.focus();
    if (handle) refocus.current = null;
  }, [tasks]);

  // a drag in progress ends with the board (another project, sign-out)
  useEffect(() => () => stopPointer.current?.(), [projectId]);

  useEffect(() => {
    if (!hasShownTask || shownTask === null) return;
    const card = board.current?.querySelector<HTMLElement>(`[data-task-id="${CSS.escape(shownTask)}"]`);
    card?.scrollIntoView?.({ block: "center", behavior: "smooth" });
    card?.focus({ preventScroll: true });
  }, [hasShownTask, shownTask]);

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
  const statuses = columns.map((c) => c.status);
  const columnTitle = (status: string): string => columns.find((c) => c.status === status)?.title ?? status;
  const names: Names = { column: columnTitle, person: nameOf };

  /** "Done, position 2 of 3" */
  const where = (list: Task[], taskId: Id, place: Place): string =>
    `${columnTitle(place.status)}, position ${place.index + 1} of ${columnCards(list, place.status, taskId).length + 1}`;

  /** Sends a move (shown at once by the hook) and says where the card went. */
  const drop = (d: Drag): void => {
    const list = latest.current;
    const here = placeOf(list, d.taskId);
    if (!here) return;
    const position = positionFor(list, d.taskId, d.to);
    if (here.status === d.to.status && (here.index === d.to.index || position === null)) {
      say(`“${d.title}” dropped where it was: ${where(list, d.taskId, here)}.`);
      return;
    }
    say(`“${d.title}” moved to ${where(list, d.taskId, d.to)}.`);
    void moveTask(d.taskId, d.to.status, position);
  };

  /** The column and slot under a pointer: the nearest column, then the cards above the point. */
  const placeAt = (x: number, y: number, taskId: Id): Place | null => {
    const cols = [...(board.current?.querySelectorAll<HTMLElement>(".column[data-status]") ?? [])];
    let best: HTMLElement | null = null;
    let bestDistance = Infinity;
    for (const col of cols) {
      const r = col.getBoundingClientRect();
      const dx = x < r.left ? r.left - x : x > r.right ? x - r.right : 0;
      const dy = y < r.top ? r.top - y : y > r.bottom ? y - r.bottom : 0;
      if (dx * dx + dy * dy < bestDistance) {
        best = col;
        bestDistance = dx * dx + dy * dy;
      }
    }
    if (!best) return null;
    const items = [...best.querySelectorAll<HTMLElement>("[data-item]")].filter((el) => el.dataset.taskId !== String(taskId));
    const index = items.filter((el) => {
      const r = el.getBoundingClientRect();
      return r.top + r.height / 2 < y;
    }).length;
    return { status: best.dataset.status ?? "", index };
  };

  const onCardPointerDown = (e: ReactPointerEvent<HTMLElement>, task: Task): void => {
    if (e.button !== 0 || dragging.current || stopPointer.current) return;
    const target = e.target as HTMLElement;
    const onHandle = target.closest("[data-drag-handle]") !== null;
    if (!onHandle && target.closest("button, a, input, select, textarea")) return;
    // a finger on the card scrolls the board; the grip is what a finger drags
    if (e.pointerType === "touch" && !onHandle) return;
    const rect = e.currentTarget.getBoundingClientRect();
    const pointerId = e.pointerId;
    const start = { x: e.clientX, y: e.clientY };
    const grab = { x: e.clientX - rect.left, y: e.clientY - rect.top };
    let at = start;
    let started = false;
    let frame = 0;

    const follow = (): void => {
      const d = dragging.current;
      if (!d) return;
      const to = placeAt(at.x, at.y, task.id) ?? d.to;
      setDrag({ ...d, to, box: { left: at.x - grab.x, top: at.y - grab.y, width: rect.width } });
    };
    // near an edge of the board, scroll it, and keep scrolling while the pointer stays there
    const scroll = (): void => {
      frame = 0;
      const area = wrap.current;
      if (!started || !area) return;
      const r = area.getBoundingClientRect();
      const dx = at.x < r.left + SCROLL_EDGE ? -12 : at.x > r.right - SCROLL_EDGE ? 12 : 0;
      const dy = at.y < r.top + SCROLL_EDGE ? -12 : at.y > r.bottom - SCROLL_EDGE ? 12 : 0;
      if (!dx && !dy) return;
      const before = [area.scrollLeft, area.scrollTop];
      area.scrollBy(dx, dy);
      if (area.scrollLeft === before[0] && area.scrollTop === before[1]) return;
      follow();
      frame = requestAnimationFrame(scroll);
    };
    const onMove = (ev: PointerEvent): void => {
      if (ev.pointerId !== pointerId) return;
      at = { x: ev.clientX, y: ev.clientY };
      if (!started) {
        if (Math.hypot(at.x - start.x, at.y - start.y) < DRAG_THRESHOLD) return;
        const from = placeOf(latest.current, task.id);
        if (!from) return finish();
        started = true;
        window.getSelection()?.removeAllRanges();
        document.documentElement.classList.add("is-dragging");
        setDrag({ taskId: task.id, title: task.title, mode: "pointer", from, to: from });
        say(`Picked up “${task.title}”.`);
      }
      ev.preventDefault();
      follow();
      if (!frame) frame = requestAnimationFrame(scroll);
    };
    const onUp = (ev: PointerEvent): void => {
      if (ev.pointerId !== pointerId) return;
      const d = dragging.current;
      finish();
      if (started && d) drop(d);
    };
    const onCancel = (ev: PointerEvent | globalThis.KeyboardEvent): void => {
      if ("pointerId" in ev && ev.pointerId !== pointerId) return;
      if ("key" in ev && ev.key !== "Escape") return;
      const d = dragging.current;
      finish();
      if (started && d) say(`Move cancelled: “${d.title}” stays in ${columnTitle(d.from.status)}.`);
    };
    const noSelect = (ev: Event): void => ev.preventDefault();
    function finish(): void {
      window.removeEventListener("pointermove", onMove);
      window.removeEventListener("pointerup", onUp);
      window.removeEventListener("pointercancel", onCancel);
      window.removeEventListener("keydown", onCancel);
      document.removeEventListener("selectstart", noSelect);
      document.documentElement.classList.remove("is-dragging");
      if (frame) cancelAnimationFrame(frame);
      frame = 0;
      stopPointer.current = null;
      if (dragging.current?.mode === "pointer") setDrag(null);
    }
    window.addEventListener("pointermove", onMove);
    window.addEventListener("pointerup", onUp);
    window.addEventListener("pointercancel", onCancel);
    window.addEventListener("keydown", onCancel);
    document.addEventListener("selectstart", noSelect);
    stopPointer.current = finish;
  };

  const onHandleKey = (e: KeyboardEvent<HTMLElement>, task: Task): void => {
    const d = dragging.current;
    const pick = e.key === " " || e.key === "Enter";
    if (!d) {
      if (!pick) return;
      e.preventDefault();
      const from = placeOf(latest.current, task.id);
      if (!from) return;
      setDrag({ taskId: task.id, title: task.title, mode: "keyboard", from, to: from });
      say(`Picked up “${task.title}”: ${where(latest.current, task.id, from)}. Arrow keys move it, Space or Enter drops it, Escape cancels.`);
      return;
    }
    if (d.mode !== "keyboard" || !sameId(d.taskId, task.id)) return;
    if (pick) {
      e.preventDefault();
      setDrag(null);
      refocus.current = task.id;
      drop(d);
    } else if (e.key === "Escape" || e.key === "Tab") {
      if (e.key === "Escape") e.preventDefault();
      setDrag(null);
      say(`Move cancelled: “${d.title}” stays in ${columnTitle(d.from.status)}.`);
    } else if (["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Home", "End"].includes(e.key)) {
      e.preventDefault();
      const to = stepPlace(latest.current, task.id, d.to, statuses, e.key);
      setDrag({ ...d, to });
      say(where(latest.current, task.id, to));
    }
  };

  const onHandleBlur = (task: Task): void => {
    const d = dragging.current;
    if (d?.mode === "keyboard" && sameId(d.taskId, task.id)) {
      setDrag(null);
      say(`Move cancelled: “${d.title}” stays in ${columnTitle(d.from.status)}.`);
    }
  };

  const renderTask = (task: Task) => {
    const notice: CardNotice | undefined = notices[String(task.id)];
    if (sameId(editing, task.id))
      return (
        <TaskEditor
          key={String(task.id)}
          task={task}
          members={members}
          columns={columns}
          heard={lastUpdate !== null && sameId(lastUpdate.taskId, task.id) && !byMe(lastUpdate, user) ? lastUpdate : null}
          names={names}
          onCancel={() => setEditing(null)}
          onSave={async (changes, base) => {
            await updateTask(task.id, changes, base);
            setEditing(null);
          }}
          onDelete={async () => {
            await deleteTask(task.id);
            setEditing(null);
          }}
        />
      );
    const d = drag !== null && sameId(drag.taskId, task.id) ? drag : null;
    return (
      <TaskCard
        key={String(task.id)}
        task={task}
        assignee={nameOf(task.assigneeId)}
        fresh={lastUpdate !== null && sameId(lastUpdate.taskId, task.id)}
        shown={shownTask !== null && String(task.id) === shownTask}
        notice={notice ? noticeText(notice, names) : null}
        onDismiss={() => dismissNotice(task.id)}
        lifted={d !== null}
        onPointerDown={(e) => onCardPointerDown(e, task)}
        onHandleKey={(e) => onHandleKey(e, task)}
        onHandleBlur={() => onHandleBlur(task)}
        onEdit={() => setEditing(task.id)}
      />
    );
  };

  /** A column's cards, with the slot where the moving card would land. */
  const renderColumn = (status: string) => {
    const cards = tasks.filter((t) => (t.status ?? "") === status);
    // the card stays in its place, faded, while it moves: the slot shows where it would land
    const home = drag !== null && drag.to.status === drag.from.status && drag.to.index === drag.from.index;
    const slotAt = drag && !home && drag.to.status === status ? drag.to.index : -1;
    const slot = (
      <div key="slot" className="drop-slot" data-testid="drop-slot" aria-hidden="true">
        {drag?.title}
      </div>
    );
    const out = [];
    let k = 0;
    for (const task of cards) {
      if (!(drag && sameId(drag.taskId, task.id))) {
        if (k === slotAt) out.push(slot);
        k += 1;
      }
      out.push(renderTask(task));
    }
    if (slotAt >= k) out.push(slot);
    return out;
  };

  return (
    <section className="board-wrap" aria-label="Tasks" ref={wrap}>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {loading && tasks.length === 0 && <p className="muted">Loading tasks…</p>}
      {lastDeleted && lastDeleted.deletedBy && !sameId(lastDeleted.deletedBy.userId, user.userId) && (
        <p className="muted" role="status" data-testid="task-deleted">
          {lastDeleted.deletedBy.userName} deleted {lastDeleted.title ? `“${lastDeleted.title}”` : "a task"}.
        </p>
      )}
      <p id="drag-help" className="sr-only">
        Press Space or Enter to pick the card up, the arrow keys to move it, Space or Enter to drop it, Escape to cancel.
      </p>
      <p className="sr-only" aria-live="assertive" aria-atomic="true" data-testid="drag-status">
        {said}
      </p>
      <div className={`board${drag ? " has-drag" : ""}`} ref={board} onMouseMove={onMouseMove} data-testid="board">
        {columns.map((column) => (
          <div className="column" key={column.status} data-status={column.status} data-testid="column">
            <h2>
              {column.title} <span className="count">{tasks.filter((t) => (t.status ?? "") === column.status).length}</span>
            </h2>
            {column.status === "todo" && <NewTask onCreate={(title) => createTask({ title, status: "todo" })} />}
            {renderColumn(column.status)}
          </div>
        ))}
        {drag?.box && (
          // what follows the pointer: a picture of the card, not the card
          <div className="card ghost" aria-hidden="true" style={drag.box} data-testid="drag-ghost">
            <h3>{drag.title}</h3>
          </div>
        )}
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

const byMe = (e: TaskUpdated, user: User): boolean => sameId(typeof e.updatedBy === "object" ? e.updatedBy.userId : e.updatedBy, user.userId);

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

interface CardProps {
  task: Task;
  assignee: string;
  fresh: boolean;
  shown: boolean;
  notice: string | null;
  onDismiss: () => void;
  /** on the move (by pointer or keyboard) */
  lifted: boolean;
  onPointerDown: (e: ReactPointerEvent<HTMLElement>) => void;
  onHandleKey: (e: KeyboardEvent<HTMLElement>) => void;
  onHandleBlur: () => void;
  onEdit: () => void;
}

function TaskCard({ task, assignee, fresh, shown, notice, onDismiss, lifted, onPointerDown, onHandleKey, onHandleBlur, onEdit }: CardProps) {
  const classes = ["card", fresh && "fresh", shown && "shown", lifted && "lifted"].filter(Boolean).join(" ");
  return (
    <article
      className={classes}
      data-task-id={String(task.id)}
      data-item=""
      data-testid="task-card"
      data-shown={shown ? "true" : undefined}
      data-dragging={lifted ? "true" : undefined}
      tabIndex={shown ? -1 : undefined}
      onPointerDown={onPointerDown}
    >
      <header className="card-head">
        <h3 data-testid="task-title">{task.title}</h3>
        <button
          type="button"
          className="grip"
          data-drag-handle=""
          data-testid="drag-handle"
          aria-label={`Move “${task.title}”`}
          aria-describedby="drag-help"
          aria-pressed={lifted}
          onKeyDown={onHandleKey}
          onBlur={onHandleBlur}
        >
          <GripIcon />
        </button>
      </header>
      {task.description && <p className="desc">{task.description}</p>}
      {notice && (
        <p className="notice" role="status" data-testid="card-notice">
          {notice}
          <button type="button" className="link" onClick={onDismiss} aria-label="Dismiss" data-testid="card-notice-dismiss">
            ×
          </button>
        </p>
      )}
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

function GripIcon() {
  return (
    <svg width="14" height="14" viewBox="0 0 14 14" aria-hidden="true" fill="currentColor">
      {[3, 7, 11].flatMap((y) => [4, 10].map((x) => <circle key={`${x}-${y}`} cx={x} cy={y} r="1.3" />))}
    </svg>
  );
}

const round = (n: number): number => Math.round(Math.min(1, Math.max(0, n)) * 1000) / 1000;

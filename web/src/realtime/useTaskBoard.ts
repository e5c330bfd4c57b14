// A project's tasks: fetched from REST, kept current by `taskUpdated`, `taskCreated` and
// `taskDeleted` (which the REST API emits to the project room on every change, from any
// user), and fetched again each time the room is joined (the first time, and after every
// reconnection), since changes made before the join were not delivered to this socket.
//
// Every update carries the version of the task it was based on. When someone else changed
// the task since, the server refuses it (409, with the current task): the board takes the
// server's task and keeps a notice on the card saying who changed what, rather than
// overwriting their change. A move shows at once and is undone if the server refuses it.
// One task's updates go out one after another, each based on the answer to the one before.

import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { conflictTask } from "../api";
import { inBoardOrder } from "../board/positions";
import { sameId, type Id, type Task, type TaskDeleted, type TaskUpdated, type User } from "../types";
import { listen } from "./listen";
import { useRealtime } from "./SocketProvider";
import { useProjectRoom } from "./useProjectRoom";

/** A notice on a card: the server refused this user's change. */
export type CardNotice =
  | {
      kind: "conflict";
      taskId: Id;
      /** What this user was doing. */
      doing: "move" | "edit";
      /** The server's task, which the board now shows. */
      task: Task;
      /** The task as this user saw it when making the change. */
      base: Task | null;
      /** Who changed it meanwhile, when the board heard of it. */
      by: User | null;
    }
  | { kind: "error"; taskId: Id; doing: "move" | "edit"; message: string };

/** Thrown by `updateTask` on a 409: the board already shows the server's task. */
export class TaskConflict extends Error {
  constructor(readonly notice: Extract<CardNotice, { kind: "conflict" }>) {
    super("Someone else changed this task");
    this.name = "TaskConflict";
  }
}

export interface TaskBoard {
  /** In board order: by position, then id. */
  tasks: Task[];
  loading: boolean;
  error: string | null;
  /** The latest live change, for highlighting it. */
  lastUpdate: TaskUpdated | null;
  /** The latest task someone deleted, with its title when it was known. */
  lastDeleted: (TaskDeleted & { title?: string }) | null;
  /** Notices by task id (String(id)). */
  notices: Record<string, CardNotice>;
  dismissNotice: (taskId: Id) => void;
  /** `base`: the task as the change was made on it (an editor's); by default the latest seen. */
  updateTask: (taskId: Id, changes: Partial<Task>, base?: Task) => Promise<Task>;
  /** Shown at once; `position` null when the server keeps no order (only the status is sent). */
  moveTask: (taskId: Id, status: string, position: number | null) => Promise<void>;
  createTask: (task: Partial<Task> & { title: string }) => Promise<Task>;
  deleteTask: (taskId: Id) => Promise<void>;
}

export function useTaskBoard(projectId: Id | null): TaskBoard {
  const { socket, api, user } = useRealtime();
  const joined = useProjectRoom(projectId);
  const [tasks, setTasks] = useState<Task[]>([]);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [lastUpdate, setLastUpdate] = useState<TaskUpdated | null>(null);
  const [lastDeleted, setLastDeleted] = useState<TaskBoard["lastDeleted"]>(null);
  const [notices, setNotices] = useState<Record<string, CardNotice>>({});
  // what the latest render showed, for undoing a move
  const shown = useRef<Task[]>([]);
  const known = useRef(new Versions());
  // the latest change by someone else, per task, to say who changed it when we are refused
  const changedBy = useRef(new Map<string, TaskUpdated>());
  const queue = useRef(new Map<string, Promise<unknown>>());
  const refetch = useRef<() => void>(() => {});

  useEffect(() => {
    shown.current = tasks;
  }, [tasks]);

  useEffect(() => {
    setTasks([]);
    setLastUpdate(null);
    setLastDeleted(null);
    setNotices({});
    setError(null);
    known.current = new Versions();
    changedBy.current = new Map();
    if (projectId === null) return;
    let current = true;
    // what the room told of while a fetch was on its way: the fetch may predate it
    let created: Task[] = [];
    let deleted = new Set<string>();
    const fetchTasks = (): void => {
      setLoading(true);
      created = [];
      deleted = new Set();
      api.tasks(projectId).then(
        (list) => {
          if (!current) return;
          for (const t of list) known.current.learn(t);
          const since = { created, deleted };
          setTasks((shownList) => mergeFetched(shownList, list, since));
          setLoading(false);
          setError(null);
        },
        (err: Error) => {
          if (!current) return;
          setLoading(false);
          setError(err.message);
        },
      );
    };
    fetchTasks();
    refetch.current = fetchTasks;
    const stop = listen(socket, {
      taskUpdated: (e: TaskUpdated) => {
        if (e.projectId !== undefined && !sameId(e.projectId, projectId)) return;
        if (e.task) known.current.learn(e.task);
        const by = typeof e.updatedBy === "object" ? e.updatedBy.userId : e.updatedBy;
        if (!sameId(by, user.userId)) changedBy.current.set(String(e.taskId), e);
        setTasks((list) => applyChanges(list, e.taskId, e.task ?? (Array.isArray(e.changes) ? {} : e.changes)));
        setLastUpdate(e);
      },
      taskCreated: (task: Task) => {
        if (task.projectId !== undefined && !sameId(task.projectId, projectId)) return;
        known.current.learn(task);
        created.push(task);
        setTasks((list) => (list.some((t) => sameId(t.id, task.id)) ? list : [...list, task]));
      },
      taskDeleted: (e: TaskDeleted) => {
        if (e.projectId !== undefined && !sameId(e.projectId, projectId)) return;
        const title = shown.current.find((t) => sameId(t.id, e.taskId))?.title;
        deleted.add(String(e.taskId));
        setTasks((list) => list.filter((t) => !sameId(t.id, e.taskId)));
        setNotices((all) => without(all, e.taskId));
        setLastDeleted({ ...e, title });
      },
    });
    return () => {
      current = false;
      refetch.current = () => {};
      stop();
    };
  }, [socket, api, user, projectId]);

  // joined (or joined again after a reconnection): what changed before is fetched
  useEffect(() => {
    if (joined?.ok) refetch.current();
  }, [joined]);

  /** Runs one task's requests in turn. */
  const inTurn = useCallback(<T,>(taskId: Id, work: () => Promise<T>): Promise<T> => {
    const key = String(taskId);
    const before = queue.current.get(key) ?? Promise.resolve();
    const next = before.catch(() => undefined).then(work);
    queue.current.set(key, next);
    const done = (): void => {
      if (queue.current.get(key) === next) queue.current.delete(key);
    };
    next.then(done, done);
    return next;
  }, []);

  /** Takes the server's task after a 409, and the notice saying so. */
  const conflicted = useCallback((taskId: Id, task: Task, doing: "move" | "edit", base: Task | null) => {
    known.current.learn(task);
    setTasks((list) => replaceTask(list, taskId, task));
    const heard = changedBy.current.get(String(taskId));
    // what we heard is the cause unless the change was made on it already
    const news = heard && !(typeof heard.task?.version === "number" && typeof base?.version === "number" && heard.task.version <= base.version);
    const by = news && typeof heard.updatedBy === "object" ? heard.updatedBy : null;
    const notice: Extract<CardNotice, { kind: "conflict" }> = { kind: "conflict", taskId, doing, task, base, by };
    setNotices((all) => ({ ...all, [String(taskId)]: notice }));
    return notice;
  }, []);

  const send = useCallback(
    (taskId: Id, changes: Partial<Task>, seen: number | undefined): Promise<Task> =>
      inTurn(taskId, async () => {
        const version = known.current.after(taskId, seen);
        const task = await api.updateTask(taskId, version === undefined ? changes : { ...changes, version });
        known.current.answered(taskId, version, task);
        setTasks((list) => replaceTask(list, taskId, task));
        return task;
      }),
    [api, inTurn],
  );

  const updateTask = useCallback(
    async (taskId: Id, changes: Partial<Task>, base?: Task): Promise<Task> => {
      const seen = typeof base?.version === "number" ? base.version : known.current.get(taskId);
      const on = base ?? shown.current.find((t) => sameId(t.id, taskId)) ?? null;
      try {
        const task = await send(taskId, changes, seen);
        setNotices((all) => without(all, taskId));
        return task;
      } catch (err) {
        const current = conflictTask(err);
        if (current) throw new TaskConflict(conflicted(taskId, current, "edit", on));
        throw err;
      }
    },
    [send, conflicted],
  );

  const moveTask = useCallback(
    async (taskId: Id, status: string, position: number | null): Promise<void> => {
      const before = shown.current.find((t) => sameId(t.id, taskId));
      if (!before) return;
      const moved: Partial<Task> = position === null ? { status } : { status, position };
      setTasks((list) => applyChanges(list, taskId, moved));
      setNotices((all) => without(all, taskId));
      try {
        await send(taskId, moved, known.current.get(taskId));
      } catch (err) {
        const current = conflictTask(err);
        if (current) {
          conflicted(taskId, current, "move", before);
          return;
        }
        // undone, unless something newer has replaced the move meanwhile
        setTasks((list) =>
          list.map((t) =>
            sameId(t.id, taskId) && t.status === status && t.version === before.version && (position === null || t.position === position)
              ? { ...t, status: before.status, position: before.position }
              : t,
          ),
        );
        setNotices((all) => ({ ...all, [String(taskId)]: { kind: "error", taskId, doing: "move", message: (err as Error).message } }));
      }
    },
    [send, conflicted],
  );

  const createTask = useCallback(
    async (task: Partial<Task> & { title: string }): Promise<Task> => {
      if (projectId === null) throw new Error("No project");
      const created = await api.createTask(projectId, task);
      known.current.learn(created);
      // `taskCreated` brings it too; whichever comes first adds it, once
      setTasks((list) => (list.some((t) => sameId(t.id, created.id)) ? list : [...list, created]));
      return created;
    },
    [api, projectId],
  );

  const deleteTask = useCallback(
    async (taskId: Id): Promise<void> => {
      await api.deleteTask(taskId);
      setTasks((list) => list.filter((t) => !sameId(t.id, taskId)));
      setNotices((all) => without(all, taskId));
    },
    [api],
  );

  const dismissNotice = useCallback((taskId: Id) => setNotices((all) => without(all, taskId)), []);
  const ordered = useMemo(() => inBoardOrder(tasks), [tasks]);

  return { tasks: ordered, loading, error, lastUpdate, lastDeleted, notices, dismissNotice, updateTask, moveTask, createTask, deleteTask };
}

/** The versions this board has seen, and which version each of its own updates led to. */
class Versions {
  private readonly latest = new Map<string, number>();
  private readonly ownNext = new Map<string, Map<number, number>>();

  learn(task: Task): void {
    if (typeof task.version !== "number") return;
    const key = String(task.id);
    this.latest.set(key, Math.max(task.version, this.latest.get(key) ?? 0));
  }

  get(taskId: Id): number | undefined {
    return this.latest.get(String(taskId));
  }

  /** The version to send for a change made on `seen`: past this board's own answered updates. */
  after(taskId: Id, seen: number | undefined): number | undefined {
    if (seen === undefined) return undefined;
    const chain = this.ownNext.get(String(taskId));
    let version = seen;
    for (let next = chain?.get(version); next !== undefined && next > version; next = chain?.get(version)) version = next;
    return version;
  }

  answered(taskId: Id, sent: number | undefined, task: Task): void {
    this.learn(task);
    if (sent === undefined || typeof task.version !== "number") return;
    const key = String(taskId);
    const chain = this.ownNext.get(key) ?? new Map<number, number>();
    chain.set(sent, task.version);
    this.ownNext.set(key, chain);
  }
}

/** The names of the fields a `taskUpdated` changed (`changes` is an object, or a list of names). */
export function changedFields(changes: TaskUpdated["changes"] | string[] | undefined): string[] {
  if (!changes) return [];
  return Array.isArray(changes) ? changes.map(String) : Object.keys(changes);
}

/** A fetched list, except where the board already heard better while the fetch was on its
 * way: a newer version of a task, a task created (`since.created`, added if the list lacks
 * it) or deleted (`since.deleted`, left out) meanwhile. */
export function mergeFetched(
  shown: Task[],
  fetched: Task[],
  since: { created: Task[]; deleted: Set<string> } = { created: [], deleted: new Set() },
): Task[] {
  const byId = new Map(shown.map((t) => [String(t.id), t]));
  const merged = fetched
    .filter((t) => !since.deleted.has(String(t.id)))
    .map((t) => {
      const mine = byId.get(String(t.id));
      return mine && typeof mine.version === "number" && typeof t.version === "number" && mine.version > t.version ? mine : t;
    });
  const listed = new Set(merged.map((t) => String(t.id)));
  for (const task of since.created) {
    const key = String(task.id);
    if (!listed.has(key) && !since.deleted.has(key)) {
      merged.push(byId.get(key) ?? task);
      listed.add(key);
    }
  }
  return merged;
}

/** The list with one task's fields changed; an older version than the one shown is ignored. */
export function applyChanges(list: Task[], taskId: Id, changes: Partial<Task>): Task[] {
  let found = false;
  const next = list.map((t) => {
    if (!sameId(t.id, taskId)) return t;
    found = true;
    if (typeof changes.version === "number" && typeof t.version === "number" && changes.version < t.version) return t;
    return { ...t, ...changes, id: t.id };
  });
  return found ? next : list;
}

/** The server's answer replaces the task, unless a newer version is already shown. */
export function replaceTask(list: Task[], taskId: Id, task: Task): Task[] {
  return applyChanges(list, taskId, task);
}

function without<T>(all: Record<string, T>, taskId: Id): Record<string, T> {
  if (!(String(taskId) in all)) return all;
  const next = { ...all };
  delete next[String(taskId)];
  return next;
}

// A project's tasks: fetched from REST, kept current by `taskUpdated` and `taskCreated`
// (which the REST API emits to the project room on every change, from any user), and
// fetched again after a reconnection, since changes made meanwhile were not delivered.

import { useCallback, useEffect, useState } from "react";
import { sameId, type Id, type Task, type TaskUpdated } from "../types";
import { listen } from "./listen";
import { useRealtime } from "./SocketProvider";
import { useProjectRoom } from "./useProjectRoom";

export interface TaskBoard {
  tasks: Task[];
  loading: boolean;
  error: string | null;
  /** The latest live change, for highlighting it. */
  lastUpdate: TaskUpdated | null;
  updateTask: (taskId: Id, changes: Partial<Task>) => Promise<Task>;
  createTask: (task: Partial<Task> & { title: string }) => Promise<Task>;
}

export function useTaskBoard(projectId: Id | null): TaskBoard {
  const { socket, api } = useRealtime();
  useProjectRoom(projectId);
  const [tasks, setTasks] = useState<Task[]>([]);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [lastUpdate, setLastUpdate] = useState<TaskUpdated | null>(null);

  useEffect(() => {
    setTasks([]);
    setLastUpdate(null);
    setError(null);
    if (projectId === null) return;
    let current = true;
    const fetchTasks = (): void => {
      setLoading(true);
      api.tasks(projectId).then(
        (list) => {
          if (!current) return;
          setTasks(list);
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
    const stop = listen(socket, {
      connect: fetchTasks,
      taskUpdated: (e: TaskUpdated) => {
        if (e.projectId !== undefined && !sameId(e.projectId, projectId)) return;
        setTasks((list) => applyChanges(list, e.taskId, e.task ?? e.changes));
        setLastUpdate(e);
      },
      taskCreated: (task: Task) => {
        if (task.projectId !== undefined && !sameId(task.projectId, projectId)) return;
        setTasks((list) => (list.some((t) => sameId(t.id, task.id)) ? list : [...list, task]));
      },
    });
    return () => {
      current = false;
      stop();
    };
  }, [socket, api, projectId]);

  const updateTask = useCallback(
    async (taskId: Id, changes: Partial<Task>): Promise<Task> => {
      const task = await api.updateTask(taskId, changes);
      setTasks((list) => list.map((t) => (sameId(t.id, taskId) ? { ...t, ...task } : t)));
      return task;
    },
    [api],
  );

  const createTask = useCallback(
    async (task: Partial<Task> & { title: string }): Promise<Task> => {
      if (projectId === null) throw new Error("No project");
      const created = await api.createTask(projectId, task);
      // `taskCreated` brings it too; whichever comes first adds it, once
      setTasks((list) => (list.some((t) => sameId(t.id, created.id)) ? list : [...list, created]));
      return created;
    },
    [api, projectId],
  );

  return { tasks, loading, error, lastUpdate, updateTask, createTask };
}

export function applyChanges(list: Task[], taskId: Id, changes: Partial<Task>): Task[] {
  let found = false;
  const next = list.map((t) => {
    if (!sameId(t.id, taskId)) return t;
    found = true;
    return { ...t, ...changes, id: t.id };
  });
  return found ? next : list;
}

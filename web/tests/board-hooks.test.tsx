// What the board's hooks do with the server's answers and events, on a real socket.io-client
// Socket that never connects: the server's events are delivered by calling the listeners the
// hooks added, and the REST API is a stand-in that answers as the server would.

import { act, cleanup, renderHook, waitFor } from "@testing-library/react";
import type { ReactNode } from "react";
import { io, type Socket } from "socket.io-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Api, ApiError, type TokenSource } from "../src/api";
import { SocketProvider, TaskConflict, useMembers, useProjects, useTaskBoard } from "../src/realtime";
import { mergeFetched } from "../src/realtime/useTaskBoard";
import type { Id, Member, Project, Task } from "../src/types";

const tokens: TokenSource = { token: () => "t", refresh: () => Promise.reject(new Error("no")) };
const me = { userId: "ada", userName: "Ada" };
const bob = { userId: "bob", userName: "Bob" };

/** A promise with its resolve and reject, for answers the test decides when to give. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  return { promise, resolve, reject };
}

class FakeApi extends Api {
  list: Task[] = [];
  projectList: Project[] = [];
  memberList: Member[] = [];
  puts: { taskId: Id; body: Partial<Task> }[] = [];
  answers: ReturnType<typeof deferred<Task>>[] = [];

  constructor() {
    super(tokens, "http://127.0.0.1:9");
  }
  override tasks(): Promise<Task[]> {
    return Promise.resolve(this.list);
  }
  override projects(): Promise<Project[]> {
    return Promise.resolve(this.projectList);
  }
  override members(): Promise<Member[]> {
    return Promise.resolve(this.memberList);
  }
  override updateTask(taskId: Id, body: Partial<Task>): Promise<Task> {
    this.puts.push({ taskId, body });
    const answer = deferred<Task>();
    this.answers.push(answer);
    return answer.promise;
  }
}

let socket: Socket;
let api: FakeApi;

beforeEach(() => {
  socket = io("http://127.0.0.1:9", { autoConnect: false, reconnection: false });
  api = new FakeApi();
});

afterEach(() => {
  cleanup();
  socket.disconnect();
});

function wrapper({ children }: { children: ReactNode }) {
  return (
    <SocketProvider socket={socket} api={api} tokens={tokens} user={me} connect={false}>
      {children}
    </SocketProvider>
  );
}

/** The server sends `event`: every listener the hooks added gets it. */
function serverSends(event: string, payload: unknown): void {
  act(() => {
    for (const fn of socket.listeners(event)) fn(payload);
  });
}

const task = (id: number, status: string, position: number, version = 1): Task => ({ id, projectId: 1, title: `t${id}`, status, position, version });
const columns = (tasks: Task[]) => tasks.map((t) => `${t.id}:${t.status}@${t.position}`);

describe("useTaskBoard", () => {
  it("keeps tasks in board order and applies only newer versions", async () => {
    api.list = [task(2, "todo", 2), task(1, "todo", 1, 4)];
    const { result } = renderHook(() => useTaskBoard(1), { wrapper });
    await waitFor(() => expect(result.current.tasks).toHaveLength(2));
    expect(result.current.tasks.map((t) => t.id)).toEqual([1, 2]);

    const updated = (t: Task) => ({ taskId: t.id, projectId: 1, changes: { status: t.status }, task: t, updatedBy: bob, timestamp: "" });
    serverSends("taskUpdated", updated({ ...task(1, "done", 1), version: 3 })); // older than shown: ignored
    expect(result.current.tasks.find((t) => t.id === 1)?.status).toBe("todo");
    serverSends("taskUpdated", updated({ ...task(1, "done", 1), version: 5 }));
    expect(result.current.tasks.find((t) => t.id === 1)?.status).toBe("done");

    serverSends("taskDeleted", { taskId: 2, projectId: 1, deletedBy: bob });
    expect(result.current.tasks.map((t) => t.id)).toEqual([1]);
    expect(result.current.lastDeleted).toMatchObject({ taskId: 2, title: "t2", deletedBy: bob });
    serverSends("taskDeleted", { taskId: 1, projectId: 99, deletedBy: bob }); // another project's
    expect(result.current.tasks.map((t) => t.id)).toEqual([1]);
  });

  it("shows a move at once, sends it with the version, and takes the server's answer", async () => {
    api.list = [task(1, "todo", 1, 3), task(2, "done", 1)];
    const { result } = renderHook(() => useTaskBoard(1), { wrapper });
    await waitFor(() => expect(result.current.tasks).toHaveLength(2));

    let moved!: Promise<void>;
    act(() => {
      moved = result.current.moveTask(1, "done", 2);
    });
    expect(columns(result.current.tasks)).toEqual(["2:done@1", "1:done@2"]);
    await waitFor(() => expect(api.puts).toHaveLength(1));
    expect(api.puts[0]).toEqual({ taskId: 1, body: { status: "done", position: 2, version: 3 } });

    await act(async () => {
      api.answers[0].resolve({ ...task(1, "done", 2), version: 4 });
      await moved;
    });
    expect(result.current.tasks.find((t) => t.id === 1)?.version).toBe(4);
    expect(result.current.notices).toEqual({});
  });

  it("sends one task's moves in turn, each on the version the one before led to", async () => {
    api.list = [task(1, "todo", 1, 3)];
    const { result } = renderHook(() => useTaskBoard(1), { wrapper });
    await waitFor(() => expect(result.current.tasks).toHaveLength(1));

    let first!: Promise<void>;
    let second!: Promise<void>;
    act(() => {
      first = result.current.moveTask(1, "in_progress", 1);
      second = result.current.moveTask(1, "done", 1);
    });
    await waitFor(() => expect(api.puts).toHaveLength(1)); // the second waits for the first
    await act(async () => {
      api.answers[0].resolve({ ...task(1, "in_progress", 1), version: 4 });
      await first;
    });
    await waitFor(() => expect(api.puts).toHaveLength(2));
    expect(api.puts[1].body).toEqual({ status: "done", position: 1, version: 4 });
    await act(async () => {
      api.answers[1].resolve({ ...task(1, "done", 1), version: 5 });
      await second;
    });
    expect(columns(result.current.tasks)).toEqual(["1:done@1"]);
  });

  it("on 409 takes the server's task and says who moved it", async () => {
    api.list = [task(1, "todo", 1, 3)];
    const { result } = renderHook(() => useTaskBoard(1), { wrapper });
    await waitFor(() => expect(result.current.tasks).toHaveLength(1));

    let moved!: Promise<void>;
    act(() => {
      moved = result.current.moveTask(1, "in_progress", 1);
    });
    // Bob's move reaches us while ours is on its way
    const theirs = { ...task(1, "done", 1), version: 4 };
    serverSends("taskUpdated", { taskId: 1, projectId: 1, changes: { status: "done" }, task: theirs, updatedBy: bob, timestamp: "" });
    expect(columns(result.current.tasks)).toEqual(["1:done@1"]);
    await waitFor(() => expect(api.puts).toHaveLength(1));
    await act(async () => {
      api.answers[0].reject(new ApiError(409, "Conflict: the task was changed", { error: "Conflict", task: theirs }));
      await moved;
    });
    expect(columns(result.current.tasks)).toEqual(["1:done@1"]);
    expect(result.current.notices["1"]).toMatchObject({ kind: "conflict", doing: "move", by: bob, task: theirs, base: { status: "todo" } });
    act(() => result.current.dismissNotice(1));
    expect(result.current.notices).toEqual({});
  });

  it("undoes a move the server refuses for another reason", async () => {
    api.list = [task(1, "todo", 1, 3), task(2, "todo", 2)];
    const { result } = renderHook(() => useTaskBoard(1), { wrapper });
    await waitFor(() => expect(result.current.tasks).toHaveLength(2));
    let moved!: Promise<void>;
    act(() => {
      moved = result.current.moveTask(1, "done", 1);
    });
    expect(columns(result.current.tasks)).toEqual(["1:done@1", "2:todo@2"]);
    await waitFor(() => expect(api.puts).toHaveLength(1));
    await act(async () => {
      api.answers[0].reject(new ApiError(429, "Rate limit exceeded"));
      await moved;
    });
    expect(columns(result.current.tasks)).toEqual(["1:todo@1", "2:todo@2"]);
    expect(result.current.notices["1"]).toEqual({ kind: "error", taskId: 1, doing: "move", message: "Rate limit exceeded" });
  });

  it("an edit on an old version is refused with TaskConflict, and the server's task shown", async () => {
    api.list = [task(1, "todo", 1, 3)];
    const { result } = renderHook(() => useTaskBoard(1), { wrapper });
    await waitFor(() => expect(result.current.tasks).toHaveLength(1));
    const base = result.current.tasks[0];
    let saved!: Promise<Task>;
    act(() => {
      saved = result.current.updateTask(1, { title: "mine" }, base);
    });
    await waitFor(() => expect(api.puts).toHaveLength(1));
    expect(api.puts[0].body).toEqual({ title: "mine", version: 3 });
    const theirs = { ...task(1, "todo", 1), title: "theirs", version: 4 };
    api.answers[0].reject(new ApiError(409, "Conflict", { task: theirs }));
    await expect(saved).rejects.toBeInstanceOf(TaskConflict);
    await waitFor(() => expect(result.current.tasks[0].title).toBe("theirs"));
    expect(result.current.notices["1"]).toMatchObject({ kind: "conflict", doing: "edit", base: { title: "t1" } });
  });
});

describe("mergeFetched", () => {
  it("takes the fetched list, but keeps a newer version that arrived while it was on its way", () => {
    const shown = [task(1, "done", 1, 5), task(2, "todo", 1, 2), task(3, "todo", 2, 1)];
    const fetched = [task(1, "todo", 1, 4), task(2, "in_progress", 1, 3), task(4, "todo", 3, 1)];
    expect(mergeFetched(shown, fetched).map((t) => `${t.id}:${t.status}:${t.version}`)).toEqual(["1:done:5", "2:in_progress:3", "4:todo:1"]);
  });

  it("keeps a task created, and leaves out one deleted, while the fetch was on its way", () => {
    const made = task(9, "todo", 9, 1);
    const shown = [task(1, "todo", 1, 1), made];
    const fetched = [task(1, "todo", 1, 1), task(2, "todo", 2, 1)]; // read before 9, and before 2 went
    const merged = mergeFetched(shown, fetched, { created: [made], deleted: new Set(["2"]) });
    expect(merged.map((t) => t.id)).toEqual([1, 9]);
    // a task both created and deleted meanwhile stays gone
    expect(mergeFetched([], [], { created: [made], deleted: new Set(["9"]) })).toEqual([]);
  });
});

describe("useProjects", () => {
  it("adds and removes projects as the server says, and remembers the last one lost", async () => {
    api.projectList = [{ id: 1, name: "Demo" }];
    const { result } = renderHook(() => useProjects(), { wrapper });
    await waitFor(() => expect(result.current.projects).toEqual([{ id: 1, name: "Demo" }]));
    serverSends("projectAdded", { project: { id: 5, name: "Launch" } });
    serverSends("projectAdded", { project: { id: 5, name: "Launch" } }); // again: once
    serverSends("projectAdded", { project: { id: 3, name: "Ops" } });
    expect(result.current.projects?.map((p) => p.id)).toEqual([1, 3, 5]);
    serverSends("projectRemoved", { projectId: 5 });
    expect(result.current.projects?.map((p) => p.id)).toEqual([1, 3]);
    expect(result.current.removed).toEqual({ projectId: 5, name: "Launch" });
  });
});

describe("useMembers", () => {
  it("follows memberAdded and memberRemoved of its own project", async () => {
    api.memberList = [{ userId: "ada", userName: "Ada" }];
    const { result } = renderHook(() => useMembers(1), { wrapper });
    await waitFor(() => expect(result.current.members).toHaveLength(1));
    serverSends("memberAdded", { projectId: 1, userId: "bob", userName: "Bob" });
    serverSends("memberAdded", { projectId: 2, userId: "cy", userName: "Cy" });
    expect(result.current.members.map((m) => m.userId)).toEqual(["ada", "bob"]);
    serverSends("memberAdded", { projectId: 1, userId: "bob", userName: "Robert" }); // a rename
    expect(result.current.members.map((m) => m.userName)).toEqual(["Ada", "Robert"]);
    serverSends("memberRemoved", { projectId: 1, userId: "bob" });
    expect(result.current.members.map((m) => m.userId)).toEqual(["ada"]);
  });
});

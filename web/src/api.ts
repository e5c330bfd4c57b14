// The REST API on the app port, with the sign-in's bearer token. A 401 asks the session for
// a fresh token once and retries: after a server restart with a new signing key, the page
// recovers without a new sign-in.

import type { ChatMessage, Id, Me, Member, Notification, Project, Task } from "./types";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The answer's JSON: a 409 carries the current task as `task`. */
    readonly body: unknown = null,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** A 409 on a task: someone changed it since the version sent; the server's current task. */
export function conflictTask(err: unknown): Task | null {
  if (!(err instanceof ApiError) || err.status !== 409) return null;
  const body = err.body as { task?: Task } | null;
  return body && typeof body === "object" && body.task && typeof body.task === "object" ? body.task : null;
}

export interface TokenSource {
  token(): string;
  /** A new token for the same user; rejects when the user has to sign in again. */
  refresh(): Promise<string>;
}

export class Api {
  constructor(
    private readonly tokens: TokenSource,
    private readonly base = "",
  ) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response = await this.send(method, path, body, this.tokens.token());
    if (response.status === 401) {
      response = await this.send(method, path, body, await this.tokens.refresh());
    }
    return readJson<T>(response);
  }

  private send(method: string, path: string, body: unknown, token: string): Promise<Response> {
    const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(this.base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  me(): Promise<Me> {
    return this.request<Me>("GET", "/api/me");
  }

  projects(): Promise<Project[]> {
    return this.request<{ projects: Project[] }>("GET", "/api/projects").then((r) => r.projects);
  }

  createProject(name: string): Promise<Project> {
    return this.request<Project>("POST", "/api/projects", { name });
  }

  members(projectId: Id): Promise<Member[]> {
    return this.request<{ members: Member[] }>("GET", `/api/projects/${enc(projectId)}/members`).then(
      (r) => r.members,
    );
  }

  addMember(projectId: Id, member: { userId: string; userName: string }): Promise<Member> {
    return this.request<Member>("POST", `/api/projects/${enc(projectId)}/members`, member);
  }

  removeMember(projectId: Id, userId: Id): Promise<unknown> {
    return this.request("DELETE", `/api/projects/${enc(projectId)}/members/${enc(userId)}`);
  }

  tasks(projectId: Id): Promise<Task[]> {
    return this.request<{ tasks: Task[] }>("GET", `/api/projects/${enc(projectId)}/tasks`).then(
      (r) => r.tasks,
    );
  }

  createTask(projectId: Id, task: Partial<Task> & { title: string }): Promise<Task> {
    return this.request<Task>("POST", `/api/projects/${enc(projectId)}/tasks`, task);
  }

  /** `changes` may carry `version` (the one last seen): a newer one answers 409 (`conflictTask`). */
  updateTask(taskId: Id, changes: Partial<Task>): Promise<Task> {
    return this.request<Task>("PUT", `/api/tasks/${enc(taskId)}`, changes);
  }

  deleteTask(taskId: Id): Promise<unknown> {
    return this.request("DELETE", `/api/tasks/${enc(taskId)}`);
  }

  /** Newest first, as the server sends them. */
  messages(projectId: Id, options: { before?: Id; limit?: number } = {}): Promise<ChatMessage[]> {
    const query = new URLSearchParams();
    if (options.before !== undefined) query.set("before", String(options.before));
    if (options.limit !== undefined) query.set("limit", String(options.limit));
    const q = query.toString();
    return this.request<{ messages: ChatMessage[] }>(
      "GET",
      `/api/projects/${enc(projectId)}/messages${q ? `?${q}` : ""}`,
    ).then((r) => r.messages);
  }

  unreadNotifications(): Promise<Notification[]> {
    return this.request<{ notifications: Notification[] }>(
      "GET",
      "/api/notifications?unread=1",
    ).then((r) => r.notifications);
  }

  markNotificationRead(id: Id): Promise<unknown> {
    return this.request("POST", `/api/notifications/${enc(id)}/read`);
  }
}

const enc = (id: Id): string => encodeURIComponent(String(id));

export async function readJson<T>(response: Response): Promise<T> {
  const text = await response.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const said = body && typeof body === "object" && "error" in body ? String(body.error) : "";
    const message = said || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message, body);
  }
  return body as T;
}

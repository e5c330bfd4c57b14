// The shapes the server sends (DESIGN.md, "The real-time features"). Ids arrive as JSON
// numbers or strings depending on the store; the client compares them with `sameId`.

export type Id = string | number;

export const sameId = (a: Id | null | undefined, b: Id | null | undefined): boolean =>
  a !== null && a !== undefined && b !== null && b !== undefined && String(a) === String(b);

export interface User {
  userId: Id;
  userName: string;
}

export interface Project {
  id: Id;
  name: string;
  [field: string]: unknown;
}

export interface Task {
  id: Id;
  projectId?: Id;
  title: string;
  description?: string | null;
  status?: string;
  assigneeId?: Id | null;
  /** 1 when created, +1 on every change; sent back with an update, which a newer one refuses. */
  version?: number;
  /** The order within its status column, lower first. */
  position?: number;
  [field: string]: unknown;
}

export interface ChatMessage {
  id: Id;
  userId: Id;
  userName: string;
  message: string;
  replyTo: Id | null;
  timestamp: string | number;
  projectId?: Id;
  /** The members the message mentions (`@userId` or `@userName`). */
  mentions?: Id[];
}

export interface Notification {
  id: Id;
  type: string;
  title: string;
  body: string;
  link: string | null;
  timestamp: string | number;
  read?: boolean;
}

export interface TaskUpdated {
  taskId: Id;
  /** The changed fields with their new values (or, from some servers, just their names). */
  changes: Partial<Task> | string[];
  /** The whole task after the change, when the server sends it. */
  task?: Task;
  updatedBy: User | Id;
  timestamp: string | number;
  projectId?: Id;
}

export interface TaskDeleted {
  taskId: Id;
  projectId?: Id;
  deletedBy?: User;
}

export interface Member extends User {
  addedAt?: string;
  online?: boolean;
}

export interface MemberAdded extends User {
  projectId: Id;
}

export interface MemberRemoved {
  projectId: Id;
  userId: Id;
}

export interface ProjectAdded {
  project: Project;
}

export interface ProjectRemoved {
  projectId: Id;
}

export interface Me extends User {
  role: string;
}

export interface CursorPosition {
  x: number;
  y: number;
}

export interface CursorUpdate {
  userId: Id;
  userName: string;
  taskId: Id | null;
  position: CursorPosition;
  projectId?: Id;
}

export type JoinResult = { ok: true; onlineMembers: User[] } | { ok: false; error: string };

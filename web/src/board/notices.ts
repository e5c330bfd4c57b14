// What a card or an editor says when someone else changed the task under this user's hands:
// "Bob moved this card to Done while you were editing it".

import type { CardNotice } from "../realtime";
import type { Id, Task, User } from "../types";

export interface Names {
  column: (status: string) => string;
  person: (userId: Id | null | undefined) => string;
}

/** What changed from `before` to `after`, as phrases: "moved this card to Done", ... */
export function changePhrases(before: Task | null, after: Task, names: Names): string[] {
  if (!before) return [];
  const out: string[] = [];
  if ((before.status ?? "") !== (after.status ?? "")) out.push(`moved this card to ${names.column(after.status ?? "")}`);
  else if (before.position !== after.position && typeof after.position === "number") out.push("moved this card");
  if (before.title !== after.title) out.push(`renamed this card to “${after.title}”`);
  if (String(before.assigneeId ?? "") !== String(after.assigneeId ?? ""))
    out.push(after.assigneeId == null ? "unassigned this card" : `assigned this card to ${names.person(after.assigneeId)}`);
  if ((before.description ?? "") !== (after.description ?? "")) out.push("changed the description");
  return out;
}

/** "a, b and c" */
export function listing(parts: string[]): string {
  if (parts.length <= 1) return parts.join("");
  return `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1]}`;
}

/** A sentence: who changed the card how, while this user was doing something to it. */
export function changedWhile(by: User | null, before: Task | null, after: Task, doing: "move" | "edit", names: Names): string {
  const who = by?.userName ?? "Someone else";
  const what = listing(changePhrases(before, after, names)) || "changed this card";
  return `${who} ${what} while you were ${doing === "move" ? "moving it" : "editing it"}`;
}

export function noticeText(notice: CardNotice, names: Names): string {
  if (notice.kind === "error") return `Could not ${notice.doing === "move" ? "move" : "save"} this card: ${notice.message}`;
  return changedWhile(notice.by, notice.base, notice.task, notice.doing, names);
}

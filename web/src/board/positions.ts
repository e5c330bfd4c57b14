// A card's place in its column: the task's `position`, lower first (ties by id). A move sends
// the position that puts the card where it was dropped: between two cards their midpoint, at
// the top the first's position - 1, at the bottom the last's + 1, in an empty column 1.

import { sameId, type Id, type Task } from "../types";

export function comparePlace(a: Task, b: Task): number {
  const pa = typeof a.position === "number" ? a.position : null;
  const pb = typeof b.position === "number" ? b.position : null;
  if (pa !== null && pb !== null && pa !== pb) return pa - pb;
  const na = Number(a.id);
  const nb = Number(b.id);
  if (!Number.isNaN(na) && !Number.isNaN(nb)) return na - nb;
  return String(a.id).localeCompare(String(b.id));
}

/** A copy in board order: by position, then id. */
export function inBoardOrder(tasks: Task[]): Task[] {
  return [...tasks].sort(comparePlace);
}

/** The position of a card put between `before` and `after` (either may be missing). */
export function positionBetween(before: number | null, after: number | null): number {
  if (before === null && after === null) return 1;
  if (before === null) return (after as number) - 1;
  if (after === null) return before + 1;
  return (before + after) / 2;
}

/** The cards of `status`, in order, without `taskId` (the card being moved). */
export function columnCards(tasks: Task[], status: string, taskId: Id | null = null): Task[] {
  return inBoardOrder(tasks.filter((t) => (t.status ?? "") === status && !sameId(t.id, taskId)));
}

export interface Place {
  status: string;
  /** Index among the column's other cards (the moved one left out). */
  index: number;
}

/** Where a card is now, as a Place. */
export function placeOf(tasks: Task[], taskId: Id): Place | null {
  const task = tasks.find((t) => sameId(t.id, taskId));
  if (!task) return null;
  const status = task.status ?? "";
  const index = inBoardOrder(tasks.filter((t) => (t.status ?? "") === status)).findIndex((t) => sameId(t.id, taskId));
  return { status, index };
}

/** The position that puts `taskId` at `place`; null when it is already there. */
export function positionFor(tasks: Task[], taskId: Id, place: Place): number | null {
  const here = placeOf(tasks, taskId);
  if (here && here.status === place.status && here.index === place.index) return null;
  // a server that keeps no order gives tasks no position: only the status can change
  if (typeof tasks.find((t) => sameId(t.id, taskId))?.position !== "number") return null;
  const others = columnCards(tasks, place.status, taskId);
  const index = Math.max(0, Math.min(place.index, others.length));
  const pos = (t: Task | undefined): number | null => (t && typeof t.position === "number" ? t.position : null);
  const before = index > 0 ? others[index - 1] : undefined;
  const after = others[index];
  if (before && pos(before) === null) return null; // the server keeps no order: nothing to compute
  if (after && pos(after) === null) return null;
  return positionBetween(pos(before), pos(after));
}

/** Keyboard moves: the place an arrow key leads to, within `statuses` (the columns, in order). */
export function stepPlace(tasks: Task[], taskId: Id, place: Place, statuses: string[], key: string): Place {
  const col = statuses.indexOf(place.status);
  const size = (status: string): number => columnCards(tasks, status, taskId).length;
  switch (key) {
    case "ArrowUp":
      return { ...place, index: Math.max(0, place.index - 1) };
    case "ArrowDown":
      return { ...place, index: Math.min(size(place.status), place.index + 1) };
    case "ArrowLeft":
    case "ArrowRight": {
      const next = statuses[col + (key === "ArrowLeft" ? -1 : 1)];
      if (next === undefined) return place;
      return { status: next, index: Math.min(place.index, size(next)) };
    }
    case "Home":
      return { ...place, index: 0 };
    case "End":
      return { ...place, index: size(place.status) };
    default:
      return place;
  }
}

import { describe, expect, it } from "vitest";
import { columnCards, inBoardOrder, placeOf, positionBetween, positionFor, stepPlace } from "../src/board/positions";
import type { Task } from "../src/types";

const task = (id: number, status: string, position?: number): Task => ({ id, title: `t${id}`, status, position });

describe("positionBetween", () => {
  it("is the midpoint between two cards", () => {
    expect(positionBetween(1, 2)).toBe(1.5);
    expect(positionBetween(-3, 5)).toBe(1);
    expect(positionBetween(1.5, 1.75)).toBe(1.625);
  });

  it("is the first's position - 1 at the top, the last's + 1 at the bottom, 1 alone", () => {
    expect(positionBetween(null, 4)).toBe(3);
    expect(positionBetween(null, 0.5)).toBe(-0.5);
    expect(positionBetween(7, null)).toBe(8);
    expect(positionBetween(null, null)).toBe(1);
  });
});

describe("board order", () => {
  it("sorts by position, then id; a card without a position sorts by id", () => {
    const tasks = [task(3, "todo", 2), task(1, "todo", 5), task(2, "todo", 2), task(4, "done", 1)];
    expect(inBoardOrder(tasks).map((t) => t.id)).toEqual([4, 2, 3, 1]);
    expect(inBoardOrder([task(9, "todo"), task(2, "todo")]).map((t) => t.id)).toEqual([2, 9]);
    expect(columnCards(tasks, "todo", 3).map((t) => t.id)).toEqual([2, 1]);
  });

  it("placeOf is the card's index in its column", () => {
    const tasks = [task(1, "todo", 1), task(2, "todo", 2), task(3, "done", 1)];
    expect(placeOf(tasks, 2)).toEqual({ status: "todo", index: 1 });
    expect(placeOf(tasks, 3)).toEqual({ status: "done", index: 0 });
    expect(placeOf(tasks, 99)).toBeNull();
  });
});

describe("positionFor", () => {
  const tasks = [task(1, "todo", 1), task(2, "todo", 2), task(3, "todo", 3), task(4, "done", 10), task(5, "done", 20)];

  it("between two cards of another column: their midpoint", () => {
    expect(positionFor(tasks, 1, { status: "done", index: 1 })).toBe(15);
  });

  it("at the top, at the bottom, and in an empty column", () => {
    expect(positionFor(tasks, 1, { status: "done", index: 0 })).toBe(9);
    expect(positionFor(tasks, 1, { status: "done", index: 2 })).toBe(21);
    expect(positionFor(tasks, 1, { status: "in_progress", index: 0 })).toBe(1);
  });

  it("within its own column, counted without the card itself", () => {
    // 1 below 2: between 2 and 3
    expect(positionFor(tasks, 1, { status: "todo", index: 1 })).toBe(2.5);
    // 3 to the top
    expect(positionFor(tasks, 3, { status: "todo", index: 0 })).toBe(0);
    // 1 to the bottom
    expect(positionFor(tasks, 1, { status: "todo", index: 2 })).toBe(4);
  });

  it("is null where the card already is, or when the server keeps no positions", () => {
    expect(positionFor(tasks, 2, { status: "todo", index: 1 })).toBeNull();
    expect(positionFor([task(1, "todo"), task(2, "done")], 1, { status: "done", index: 0 })).toBeNull();
    expect(positionFor([task(1, "todo")], 1, { status: "done", index: 0 })).toBeNull();
  });
});

describe("stepPlace (the keyboard)", () => {
  const tasks = [task(1, "todo", 1), task(2, "todo", 2), task(3, "todo", 3), task(4, "done", 1)];
  const statuses = ["todo", "in_progress", "done"];

  it("moves up and down within the column, stopping at its ends", () => {
    expect(stepPlace(tasks, 2, { status: "todo", index: 1 }, statuses, "ArrowUp")).toEqual({ status: "todo", index: 0 });
    expect(stepPlace(tasks, 2, { status: "todo", index: 0 }, statuses, "ArrowUp")).toEqual({ status: "todo", index: 0 });
    expect(stepPlace(tasks, 2, { status: "todo", index: 1 }, statuses, "ArrowDown")).toEqual({ status: "todo", index: 2 });
    expect(stepPlace(tasks, 2, { status: "todo", index: 2 }, statuses, "ArrowDown")).toEqual({ status: "todo", index: 2 });
    expect(stepPlace(tasks, 2, { status: "todo", index: 1 }, statuses, "End")).toEqual({ status: "todo", index: 2 });
    expect(stepPlace(tasks, 2, { status: "todo", index: 1 }, statuses, "Home")).toEqual({ status: "todo", index: 0 });
  });

  it("moves across columns, keeping the row when the column is long enough", () => {
    expect(stepPlace(tasks, 3, { status: "todo", index: 2 }, statuses, "ArrowRight")).toEqual({ status: "in_progress", index: 0 });
    expect(stepPlace(tasks, 1, { status: "in_progress", index: 0 }, statuses, "ArrowRight")).toEqual({ status: "done", index: 0 });
    expect(stepPlace(tasks, 1, { status: "done", index: 1 }, statuses, "ArrowRight")).toEqual({ status: "done", index: 1 });
    expect(stepPlace(tasks, 4, { status: "done", index: 0 }, statuses, "ArrowLeft")).toEqual({ status: "in_progress", index: 0 });
    expect(stepPlace(tasks, 1, { status: "todo", index: 0 }, statuses, "ArrowLeft")).toEqual({ status: "todo", index: 0 });
    expect(stepPlace(tasks, 1, { status: "todo", index: 0 }, statuses, "x")).toEqual({ status: "todo", index: 0 });
  });
});

import { describe, expect, it } from "vitest";
import { changePhrases, changedWhile, listing, noticeText, type Names } from "../src/board/notices";
import type { Task } from "../src/types";

const names: Names = {
  column: (s) => ({ todo: "To do", in_progress: "In progress", done: "Done" })[s] ?? s,
  person: (id) => (id === "bob" ? "Bob" : String(id)),
};
const base: Task = { id: 1, title: "Write tests", status: "todo", position: 1, assigneeId: null, description: "", version: 3 };
const bob = { userId: "bob", userName: "Bob" };

describe("what changed", () => {
  it("names each change", () => {
    expect(changePhrases(base, { ...base, status: "done" }, names)).toEqual(["moved this card to Done"]);
    expect(changePhrases(base, { ...base, position: 5 }, names)).toEqual(["moved this card"]);
    expect(changePhrases(base, { ...base, title: "New" }, names)).toEqual(["renamed this card to “New”"]);
    expect(changePhrases(base, { ...base, assigneeId: "bob" }, names)).toEqual(["assigned this card to Bob"]);
    expect(changePhrases({ ...base, assigneeId: "bob" }, base, names)).toEqual(["unassigned this card"]);
    expect(changePhrases(base, { ...base, description: "more" }, names)).toEqual(["changed the description"]);
    expect(changePhrases(base, { ...base, version: 4 }, names)).toEqual([]);
    expect(changePhrases(null, base, names)).toEqual([]);
  });

  it("lists them as a sentence", () => {
    expect(listing([])).toBe("");
    expect(listing(["a"])).toBe("a");
    expect(listing(["a", "b", "c"])).toBe("a, b and c");
  });

  it("says who did it while the user was moving or editing", () => {
    expect(changedWhile(bob, base, { ...base, status: "done" }, "edit", names)).toBe("Bob moved this card to Done while you were editing it");
    expect(changedWhile(bob, base, { ...base, status: "done", title: "X" }, "move", names)).toBe(
      "Bob moved this card to Done and renamed this card to “X” while you were moving it",
    );
    expect(changedWhile(null, base, { ...base, version: 9 }, "move", names)).toBe("Someone else changed this card while you were moving it");
  });

  it("noticeText: a refused change, or an error", () => {
    expect(noticeText({ kind: "conflict", taskId: 1, doing: "move", task: { ...base, status: "done" }, base, by: bob }, names)).toBe(
      "Bob moved this card to Done while you were moving it",
    );
    expect(noticeText({ kind: "error", taskId: 1, doing: "move", message: "Rate limit exceeded" }, names)).toBe(
      "Could not move this card: Rate limit exceeded",
    );
  });
});

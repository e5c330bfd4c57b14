import { describe, expect, it } from "vitest";
import { addressFrom } from "../src/board/address";

const at = (pathname: string, hash = "") => ({ pathname, hash });

describe("addressFrom", () => {
  it("reads a notification's link: a project and a task", () => {
    expect(addressFrom(at("/projects/3/tasks/7"))).toEqual({ project: "3", task: "7" });
    expect(addressFrom(at("/projects/3"))).toEqual({ project: "3", task: null });
    expect(addressFrom(at("/projects/a%20b/tasks/x/"))).toEqual({ project: "a b", task: "x" });
  });

  it("reads the board's own address from the hash", () => {
    expect(addressFrom(at("/", "#project=4"))).toEqual({ project: "4", task: null });
    expect(addressFrom(at("/", "#project=4&task=9"))).toEqual({ project: "4", task: "9" });
  });

  it("reads nothing elsewhere", () => {
    expect(addressFrom(at("/", ""))).toEqual({ project: null, task: null });
    expect(addressFrom(at("/projects/3/tasks/7/edit"))).toEqual({ project: null, task: null });
    expect(addressFrom(at("/other/3"))).toEqual({ project: null, task: null });
  });
});

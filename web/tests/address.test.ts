import { describe, expect, it } from "vitest";
import { addressFrom } from "../src/board/address";

const at = (pathname: string, hash = "") => ({ pathname, hash });
const none = { project: null, task: null, message: null };

describe("addressFrom", () => {
  it("reads a notification's link: a project and a task", () => {
    expect(addressFrom(at("/projects/3/tasks/7"))).toEqual({ ...none, project: "3", task: "7" });
    expect(addressFrom(at("/projects/3"))).toEqual({ ...none, project: "3" });
    expect(addressFrom(at("/projects/a%20b/tasks/x/"))).toEqual({ ...none, project: "a b", task: "x" });
  });

  it("reads a mention's link: a project and a message", () => {
    expect(addressFrom(at("/projects/3/messages/12"))).toEqual({ ...none, project: "3", message: "12" });
    expect(addressFrom(at("/projects/3/messages/12/"))).toEqual({ ...none, project: "3", message: "12" });
    expect(addressFrom(at("/projects/3/messages/"))).toEqual(none);
  });

  it("reads the board's own address from the hash", () => {
    expect(addressFrom(at("/", "#project=4"))).toEqual({ ...none, project: "4" });
    expect(addressFrom(at("/", "#project=4&task=9"))).toEqual({ ...none, project: "4", task: "9" });
    expect(addressFrom(at("/", "#project=4&message=5"))).toEqual({ ...none, project: "4", message: "5" });
    // a name that ends like another is not it
    expect(addressFrom(at("/", "#subproject=4"))).toEqual(none);
  });

  it("reads nothing elsewhere", () => {
    expect(addressFrom(at("/", ""))).toEqual(none);
    expect(addressFrom(at("/projects/3/tasks/7/edit"))).toEqual(none);
    expect(addressFrom(at("/projects/3/comments/7"))).toEqual(none);
    expect(addressFrom(at("/other/3"))).toEqual(none);
  });
});

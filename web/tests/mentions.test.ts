import { describe, expect, it } from "vitest";
import { findMentions, insertMention, mentionSegments, suggestMembers, typedMention } from "../src/board/mentions";

const members = [
  { userId: "alice", userName: "Alice" },
  { userId: "bob", userName: "Bob" },
  { userId: "bob-smith", userName: "Bob Smith" },
  { userId: "ada-lovelace", userName: "Ada Lovelace" },
];
const ids = (text: string) => findMentions(text, members).map((m) => m.userId);

describe("findMentions", () => {
  it("finds @userName and @userId, case-insensitive", () => {
    expect(ids("hi @Alice")).toEqual(["alice"]);
    expect(ids("@bob, look")).toEqual(["bob"]);
    expect(ids("@ALICE and @ada-lovelace")).toEqual(["alice", "ada-lovelace"]);
  });

  it("matches a name with spaces as a whole, the longest name first", () => {
    expect(ids("ask @Bob Smith today")).toEqual(["bob-smith"]);
    expect(ids("ask @Bob today")).toEqual(["bob"]);
    expect(ids("@ada lovelace!")).toEqual(["ada-lovelace"]);
  });

  it("takes whole words only, and no addresses or strangers", () => {
    expect(ids("@Bobby")).toEqual([]);
    expect(ids("mail bob@example.org")).toEqual([]);
    expect(ids("@Carol")).toEqual([]);
    expect(ids("@ alone")).toEqual([]);
    expect(ids("@Bob's turn")).toEqual(["bob"]);
    expect(ids("@@bob")).toEqual([]);
    expect(ids("@bob_2")).toEqual([]);
  });

  it("gives each mention's span", () => {
    expect(findMentions("x @Bob Smith y", members)).toEqual([{ start: 2, end: 12, userId: "bob-smith" }]);
  });
});

describe("mentionSegments", () => {
  it("cuts the text into plain runs and mentions that join back into it", () => {
    const text = "@Alice meet @bob here";
    const segments = mentionSegments(text, members);
    expect(segments).toEqual([
      { text: "@Alice", userId: "alice" },
      { text: " meet " },
      { text: "@bob", userId: "bob" },
      { text: " here" },
    ]);
    expect(segments.map((s) => s.text).join("")).toBe(text);
    expect(mentionSegments("nothing", members)).toEqual([{ text: "nothing" }]);
    expect(mentionSegments("", members)).toEqual([]);
  });
});

describe("typing a mention", () => {
  it("typedMention reads the @ and what follows up to the caret", () => {
    expect(typedMention("hi @Bo", 6)).toEqual({ start: 3, query: "Bo" });
    expect(typedMention("@", 1)).toEqual({ start: 0, query: "" });
    expect(typedMention("hi @Bob Sm", 10)).toEqual({ start: 3, query: "Bob Sm" });
    expect(typedMention("hi @Bo and more", 6)).toEqual({ start: 3, query: "Bo" });
  });

  it("typedMention is null when there is nothing being typed", () => {
    expect(typedMention("hi", 2)).toBeNull();
    expect(typedMention("bob@ex", 6)).toBeNull();
    expect(typedMention("@ bob", 5)).toBeNull();
    expect(typedMention("@bob\nnext", 9)).toBeNull();
    expect(typedMention(`@${"x".repeat(50)}`, 51)).toBeNull();
  });

  it("suggestMembers offers names and ids that start with the query, then later words", () => {
    expect(suggestMembers(members, "").map((m) => m.userId)).toEqual(["alice", "bob", "bob-smith", "ada-lovelace"]);
    expect(suggestMembers(members, "bo").map((m) => m.userId)).toEqual(["bob", "bob-smith"]);
    expect(suggestMembers(members, "bob s").map((m) => m.userId)).toEqual(["bob-smith"]);
    expect(suggestMembers(members, "love").map((m) => m.userId)).toEqual(["ada-lovelace"]);
    expect(suggestMembers(members, "zz")).toEqual([]);
    expect(suggestMembers(members, "", 2)).toHaveLength(2);
  });

  it("insertMention puts @userName and a space in place of what was typed", () => {
    expect(insertMention("hi @bo", { start: 3, query: "bo" }, 6, members[1])).toEqual({ text: "hi @Bob ", caret: 8 });
    expect(insertMention("@bo there", { start: 0, query: "bo" }, 3, members[2])).toEqual({ text: "@Bob Smith there", caret: 11 });
  });
});

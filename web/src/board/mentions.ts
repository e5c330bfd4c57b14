// @mentions in chat, the way the server reads them (server/realtime/wording.py): `@` then a
// member's userId or userName, case-insensitive, as a whole word: not after a letter, digit,
// `_` or `@`, nor followed by one; a name with spaces matches as a whole. Used to highlight
// them in messages (where names overlap, "@Bob Smith", the longest is highlighted), and, while
// typing, to offer the members.

import type { Id, User } from "../types";

const WORD = /[\p{L}\p{N}_]/u;
const isWord = (ch: string | undefined): boolean => ch !== undefined && WORD.test(ch);

export interface Mention {
  start: number; // the `@`
  end: number; // just after the name
  userId: Id;
}

/** The mentions of members in `text`, in order. */
export function findMentions(text: string, members: User[]): Mention[] {
  const found: Mention[] = [];
  const lower = text.toLowerCase();
  for (let i = lower.indexOf("@"); i !== -1; i = lower.indexOf("@", i + 1)) {
    if (i > 0 && (isWord(text[i - 1]) || text[i - 1] === "@")) continue; // ada@example.org, @@ada
    let best: Mention | null = null;
    for (const member of members) {
      for (const name of [member.userName, String(member.userId)]) {
        const n = name.toLowerCase();
        if (!n || !lower.startsWith(n, i + 1)) continue;
        const end = i + 1 + n.length;
        if (isWord(text[end])) continue; // "@Bobby" is not Bob
        if (!best || end > best.end) best = { start: i, end, userId: member.userId };
      }
    }
    if (best) {
      found.push(best);
      i = best.end - 1;
    }
  }
  return found;
}

export type Segment = { text: string; userId?: undefined } | { text: string; userId: Id };

/** `text` cut into plain runs and mentions, for rendering. */
export function mentionSegments(text: string, members: User[]): Segment[] {
  const out: Segment[] = [];
  let at = 0;
  for (const m of findMentions(text, members)) {
    if (m.start > at) out.push({ text: text.slice(at, m.start) });
    out.push({ text: text.slice(m.start, m.end), userId: m.userId });
    at = m.end;
  }
  if (at < text.length) out.push({ text: text.slice(at) });
  return out;
}

export interface Typed {
  /** Index of the `@`. */
  start: number;
  /** What follows it, up to the caret. */
  query: string;
}

/** The mention being typed just before `caret`, if any: `@` and up to 40 characters. */
export function typedMention(text: string, caret: number): Typed | null {
  const before = text.slice(0, caret);
  const start = before.lastIndexOf("@");
  if (start === -1 || caret - start > 41) return null;
  if (start > 0 && isWord(text[start - 1])) return null;
  const query = before.slice(start + 1);
  if (/[\n@]/.test(query) || query.startsWith(" ")) return null;
  return { start, query };
}

/** The members a typed query may mean: names or ids that start with it, or a later word of the name. */
export function suggestMembers(members: User[], query: string, limit = 8): User[] {
  const q = query.toLowerCase();
  const starts = (m: User): boolean => m.userName.toLowerCase().startsWith(q) || String(m.userId).toLowerCase().startsWith(q);
  const inside = (m: User): boolean => !q.includes(" ") && m.userName.toLowerCase().split(/\s+/).some((w) => w.startsWith(q));
  return [...members.filter(starts), ...members.filter((m) => !starts(m) && inside(m))].slice(0, limit);
}

/** `text` with the typed mention replaced by `@userName ` and where the caret goes after it. */
export function insertMention(text: string, typed: Typed, caret: number, user: User): { text: string; caret: number } {
  const rest = text.slice(caret);
  const inserted = `@${user.userName}${rest.startsWith(" ") ? "" : " "}`;
  const next = text.slice(0, typed.start) + inserted + rest;
  return { text: next, caret: typed.start + inserted.length + (rest.startsWith(" ") ? 1 : 0) };
}

import { useEffect, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { useProjectChat, useRealtime } from "../realtime";
import { sameId, type ChatMessage, type Id, type User } from "../types";
import { findMentions, insertMention, mentionSegments, suggestMembers, typedMention } from "./mentions";

export function typingText(users: User[]): string {
  if (users.length === 0) return "";
  if (users.length === 1) return `${users[0].userName} is typing…`;
  if (users.length === 2) return `${users[0].userName} and ${users[1].userName} are typing…`;
  return `${users.length} people are typing…`;
}

const timeOf = (ts: string | number): string => {
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
};

/** Pages of history fetched at most to find a linked message. */
const MAX_PAGES_BACK = 20;

/** Whether `m` mentions `userId`: the server's list when it sent one, else the text. */
export function mentionsUser(m: ChatMessage, userId: Id, members: User[]): boolean {
  if (Array.isArray(m.mentions)) return m.mentions.some((id) => sameId(id, userId));
  return findMentions(m.message, members).some((x) => sameId(x.userId, userId));
}

/** `shownMessage`: a message to bring into view and mark (a mention's link opened it). */
export function ChatPanel({ projectId, members, shownMessage = null }: { projectId: Id; members: User[]; shownMessage?: string | null }) {
  const { user } = useRealtime();
  const chat = useProjectChat(projectId);
  const [draft, setDraft] = useState("");
  const [caret, setCaret] = useState(0);
  const [active, setActive] = useState(0);
  // the `@` whose suggestions were closed with Escape
  const [dismissed, setDismissed] = useState<number | null>(null);
  const [replyTo, setReplyTo] = useState<ChatMessage | null>(null);
  const [sendError, setSendError] = useState<string | null>(null);
  const list = useRef<HTMLOListElement>(null);
  const input = useRef<HTMLInputElement>(null);
  const pagesBack = useRef(0);

  const typed = typedMention(draft, caret);
  const options = typed && typed.start !== dismissed ? suggestMembers(members, typed.query) : [];
  const open = options.length > 0;
  const activeIndex = Math.min(active, Math.max(0, options.length - 1));
  const found = shownMessage !== null && chat.messages.some((m) => String(m.id) === shownMessage);

  useEffect(() => {
    const el = list.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [chat.messages.length]);

  useEffect(() => {
    pagesBack.current = 0;
  }, [shownMessage, projectId]);

  // a linked message: brought into view and marked, fetching older pages until it is there
  useEffect(() => {
    if (shownMessage === null || chat.loading) return;
    if (found) {
      const item = list.current?.querySelector<HTMLElement>(`[data-message-id="${CSS.escape(shownMessage)}"]`);
      item?.scrollIntoView?.({ block: "center" });
      return;
    }
    if (chat.hasOlder && pagesBack.current < MAX_PAGES_BACK) {
      pagesBack.current += 1;
      void chat.loadOlder();
    }
  }, [shownMessage, found, chat.loading, chat.hasOlder, chat.messages, chat.loadOlder]);

  const follow = (el: HTMLInputElement): void => {
    setCaret(el.selectionStart ?? el.value.length);
  };

  const choose = (member: User): void => {
    if (!typed) return;
    const next = insertMention(draft, typed, caret, member);
    setDraft(next.text);
    setCaret(next.caret);
    setActive(0);
    requestAnimationFrame(() => {
      input.current?.focus();
      input.current?.setSelectionRange(next.caret, next.caret);
    });
  };

  const onKeyDown = (e: KeyboardEvent<HTMLInputElement>): void => {
    if (!open || !typed) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const step = e.key === "ArrowDown" ? 1 : -1;
      setActive((activeIndex + step + options.length) % options.length);
    } else if (e.key === "Enter" || e.key === "Tab") {
      e.preventDefault();
      choose(options[activeIndex]);
    } else if (e.key === "Escape") {
      e.preventDefault();
      setDismissed(typed.start);
    }
  };

  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    const text = draft.trim();
    if (!text) return;
    setSendError(null);
    try {
      await chat.send(text, replyTo?.id ?? null);
      setDraft("");
      setCaret(0);
      setDismissed(null);
      setReplyTo(null);
    } catch (err) {
      setSendError((err as Error).message);
    }
  };

  const quoted = (id: Id | null): ChatMessage | undefined => (id === null ? undefined : chat.messages.find((m) => sameId(m.id, id)));

  return (
    <aside className="chat" aria-label="Project chat">
      <h2>Chat</h2>
      {chat.error && (
        <p className="error" role="alert">
          {chat.error}
        </p>
      )}
      {chat.hasOlder && (
        <button type="button" className="link" onClick={() => void chat.loadOlder()}>
          Earlier messages
        </button>
      )}
      {!chat.loading && chat.messages.length === 0 && <p className="muted">No messages yet. Say hello.</p>}
      <ol className="messages" ref={list} data-testid="messages">
        {chat.messages.map((m) => {
          const parent = quoted(m.replyTo);
          const mine = sameId(m.userId, user.userId);
          const forMe = !mine && mentionsUser(m, user.userId, members);
          const shown = shownMessage !== null && String(m.id) === shownMessage;
          const classes = [mine && "mine", forMe && "for-me", shown && "shown"].filter(Boolean).join(" ");
          return (
            <li
              key={String(m.id)}
              className={classes}
              data-testid="message"
              data-message-id={String(m.id)}
              data-mentions-me={forMe ? "true" : undefined}
              data-shown={shown ? "true" : undefined}
            >
              {parent && <blockquote>{parent.userName}: {parent.message}</blockquote>}
              <span className="who">{m.userName}</span> <span className="when">{timeOf(m.timestamp)}</span>
              <button type="button" className="link reply" onClick={() => setReplyTo(m)} aria-label={`Reply to ${m.userName}`}>
                ↩
              </button>
              <div className="text" data-testid="message-text">
                {mentionSegments(m.message, members).map((seg, i) =>
                  seg.userId === undefined ? (
                    seg.text
                  ) : (
                    <mark
                      key={i}
                      className={`mention${sameId(seg.userId, user.userId) ? " me" : ""}`}
                      data-testid="mention"
                      data-user-id={String(seg.userId)}
                    >
                      {seg.text}
                    </mark>
                  ),
                )}
              </div>
            </li>
          );
        })}
      </ol>
      <p className="typing" aria-live="polite" data-testid="typing">
        {typingText(chat.typing)}
      </p>
      {replyTo && (
        <p className="replying">
          Replying to {replyTo.userName}{" "}
          <button type="button" className="link" onClick={() => setReplyTo(null)}>
            cancel
          </button>
        </p>
      )}
      <form onSubmit={(e) => void submit(e)} className="row compose">
        {open && (
          <ul className="mention-list" id="mention-list" role="listbox" aria-label="Members to mention" data-testid="mention-list">
            {options.map((m, i) => (
              <li
                key={String(m.userId)}
                id={`mention-option-${i}`}
                role="option"
                aria-selected={i === activeIndex}
                className={i === activeIndex ? "active" : ""}
                data-testid="mention-option"
                onMouseDown={(e) => e.preventDefault()}
                onMouseEnter={() => setActive(i)}
                onClick={() => choose(m)}
              >
                <strong>{m.userName}</strong> <span className="muted">@{String(m.userId)}</span>
              </li>
            ))}
          </ul>
        )}
        <input
          ref={input}
          value={draft}
          placeholder="Message (@ to mention)"
          aria-label="Message"
          role="combobox"
          aria-autocomplete="list"
          aria-expanded={open}
          aria-controls={open ? "mention-list" : undefined}
          aria-activedescendant={open ? `mention-option-${activeIndex}` : undefined}
          data-testid="chat-input"
          onChange={(e) => {
            setDraft(e.target.value);
            follow(e.target);
            setActive(0);
            chat.setTyping(e.target.value.length > 0);
          }}
          onSelect={(e) => follow(e.currentTarget)}
          onKeyDown={onKeyDown}
          onBlur={() => typed && setDismissed(typed.start)}
          onFocus={() => setDismissed(null)}
        />
        <button type="submit" disabled={!draft.trim()} data-testid="chat-send">
          Send
        </button>
      </form>
      {sendError && (
        <p className="error" role="alert">
          {sendError}
        </p>
      )}
    </aside>
  );
}

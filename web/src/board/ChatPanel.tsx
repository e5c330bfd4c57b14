import { useEffect, useRef, useState, type FormEvent } from "react";
import { useProjectChat, useRealtime } from "../realtime";
import { sameId, type ChatMessage, type Id, type User } from "../types";

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

export function ChatPanel({ projectId }: { projectId: Id }) {
  const { user } = useRealtime();
  const chat = useProjectChat(projectId);
  const [draft, setDraft] = useState("");
  const [replyTo, setReplyTo] = useState<ChatMessage | null>(null);
  const [sendError, setSendError] = useState<string | null>(null);
  const list = useRef<HTMLOListElement>(null);

  useEffect(() => {
    const el = list.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [chat.messages.length]);

  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    const text = draft.trim();
    if (!text) return;
    setSendError(null);
    try {
      await chat.send(text, replyTo?.id ?? null);
      setDraft("");
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
          return (
            <li key={String(m.id)} className={sameId(m.userId, user.userId) ? "mine" : ""} data-testid="message">
              {parent && <blockquote>{parent.userName}: {parent.message}</blockquote>}
              <span className="who">{m.userName}</span> <span className="when">{timeOf(m.timestamp)}</span>
              <button type="button" className="link reply" onClick={() => setReplyTo(m)} aria-label={`Reply to ${m.userName}`}>
                ↩
              </button>
              <div className="text" data-testid="message-text">
                {m.message}
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
      <form onSubmit={(e) => void submit(e)} className="row">
        <input
          value={draft}
          placeholder="Message"
          aria-label="Message"
          data-testid="chat-input"
          onChange={(e) => {
            setDraft(e.target.value);
            chat.setTyping(e.target.value.length > 0);
          }}
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

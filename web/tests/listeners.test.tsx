// Every hook removes exactly the listeners it added. The socket is a real socket.io-client
// Socket, never connected, so its own Emitter bookkeeping is what is counted: mounting,
// unmounting, remounting, switching projects and React's StrictMode double effects must
// leave one listener per event per hook, and none after clean-up.

import { cleanup, render, renderHook, waitFor } from "@testing-library/react";
import { StrictMode, type ReactNode } from "react";
import { io, type Socket } from "socket.io-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Api, type TokenSource } from "../src/api";
import {
  SocketProvider,
  useCursors,
  useMembers,
  useNotifications,
  usePresence,
  useProjectChat,
  useProjectRoom,
  useProjects,
  useTaskBoard,
} from "../src/realtime";
import type { Id } from "../src/types";

// Nothing listens on the discard port of loopback: REST calls fail fast, as when offline.
const NOWHERE = "http://127.0.0.1:9";

const tokens: TokenSource = {
  token: () => "not-a-token",
  refresh: () => Promise.reject(new Error("no server")),
};
const user = { userId: "u1", userName: "Ada" };

type Counts = Record<string, number>;

/** Listener counts per event, read back through the Emitter's own `listeners(event)`. */
function counts(emitter: { listeners(event: string): unknown[] }, events: string[]): Counts {
  const out: Counts = {};
  for (const event of events) {
    const n = emitter.listeners(event).length;
    if (n) out[event] = n;
  }
  return out;
}

/** Every event that has ever had a listener on the emitter (Emitter keeps `_callbacks`). */
function eventsOf(emitter: object): string[] {
  const callbacks = (emitter as { _callbacks?: Record<string, unknown[]> })._callbacks ?? {};
  return Object.keys(callbacks).map((key) => key.slice(1));
}

function allCounts(socket: Socket): { socket: Counts; manager: Counts; any: number } {
  return {
    socket: counts(socket, eventsOf(socket)),
    manager: counts(socket.io, eventsOf(socket.io)),
    any: socket.listenersAny().length,
  };
}

const PROVIDER = { connect: 1, disconnect: 1, connect_error: 1 };
// the provider's room registry rejoins on `connect` too
const PROVIDER_SOCKET = { ...PROVIDER, connect: 2 };

let socket: Socket;
let api: Api;

beforeEach(() => {
  socket = io(NOWHERE, { autoConnect: false, reconnection: false });
  api = new Api(tokens, NOWHERE);
});

afterEach(() => {
  cleanup();
  socket.disconnect();
});

function wrapperFor(strict: boolean) {
  return function Wrapper({ children }: { children: ReactNode }) {
    const tree = (
      <SocketProvider socket={socket} api={api} tokens={tokens} user={user} connect={false}>
        {children}
      </SocketProvider>
    );
    return strict ? <StrictMode>{tree}</StrictMode> : tree;
  };
}

const hooks: { name: string; use: (projectId: Id) => unknown; adds: Counts }[] = [
  { name: "useProjectChat", use: (p) => useProjectChat(p), adds: { newMessage: 1, userTyping: 1 } },
  { name: "useTaskBoard", use: (p) => useTaskBoard(p), adds: { taskUpdated: 1, taskCreated: 1, taskDeleted: 1 } },
  { name: "useNotifications", use: () => useNotifications(), adds: { connect: 1, notification: 1 } },
  { name: "usePresence", use: (p) => usePresence(p), adds: { userJoined: 1, userLeft: 1 } },
  { name: "useCursors", use: (p) => useCursors(p), adds: { cursorUpdate: 1, userLeft: 1 } },
  { name: "useProjectRoom", use: (p) => useProjectRoom(p), adds: {} },
  { name: "useProjects", use: () => useProjects(), adds: { connect: 1, projectAdded: 1, projectRemoved: 1 } },
  { name: "useMembers", use: (p) => useMembers(p), adds: { memberAdded: 1, memberRemoved: 1 } },
];

function plus(a: Counts, b: Counts): Counts {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
}

describe("the provider", () => {
  it("adds its listeners once and removes all of them on unmount", () => {
    expect(allCounts(socket)).toEqual({ socket: {}, manager: {}, any: 0 });
    const { unmount } = render(<div />, { wrapper: wrapperFor(false) });
    expect(allCounts(socket)).toEqual({ socket: PROVIDER_SOCKET, manager: { reconnect_attempt: 1 }, any: 0 });
    unmount();
    expect(allCounts(socket)).toEqual({ socket: {}, manager: {}, any: 0 });
  });

  it("under StrictMode's double effects still holds one set", () => {
    const { unmount } = render(<div />, { wrapper: wrapperFor(true) });
    expect(allCounts(socket)).toEqual({ socket: PROVIDER_SOCKET, manager: { reconnect_attempt: 1 }, any: 0 });
    unmount();
    expect(allCounts(socket)).toEqual({ socket: {}, manager: {}, any: 0 });
  });
});

describe.each(hooks)("$name", ({ use, adds }) => {
  for (const strict of [false, true]) {
    it(`adds one listener per event and removes exactly those${strict ? " (StrictMode)" : ""}`, () => {
      // a listener someone else added must survive the hook's clean-up
      const foreign = (): void => {};
      socket.on("newMessage", foreign);
      socket.on("userLeft", foreign);
      const base = plus(PROVIDER_SOCKET, { newMessage: 1, userLeft: 1 });

      // the hook alone, beside a provider that stays mounted
      function Harness({ show, projectId }: { show: boolean; projectId: Id }) {
        return show ? <Probe projectId={projectId} /> : null;
      }
      function Probe({ projectId }: { projectId: Id }) {
        use(projectId);
        return null;
      }
      const Wrapper = wrapperFor(strict);
      const { rerender, unmount } = render(<Harness show projectId={1} />, { wrapper: Wrapper });
      expect(allCounts(socket).socket).toEqual(plus(base, adds));

      rerender(<Harness show={false} projectId={1} />);
      expect(allCounts(socket).socket).toEqual(base);

      rerender(<Harness show projectId={1} />);
      expect(allCounts(socket).socket).toEqual(plus(base, adds));

      // another project: the old project's listeners go, the new one's come
      rerender(<Harness show projectId={2} />);
      expect(allCounts(socket).socket).toEqual(plus(base, adds));

      unmount();
      expect(allCounts(socket)).toEqual({ socket: { newMessage: 1, userLeft: 1 }, manager: {}, any: 0 });
      expect(socket.listeners("newMessage")).toEqual([foreign]);
      expect(socket.listeners("userLeft")).toEqual([foreign]);
    });
  }

  it("mounted many times at once adds one set per mount, and all go", () => {
    const { result, unmount } = renderHook(
      () => {
        use(7);
        use(7);
        use(8);
      },
      { wrapper: wrapperFor(false) },
    );
    expect(result.current).toBeUndefined();
    const three: Counts = {};
    for (const [k, v] of Object.entries(adds)) three[k] = v * 3;
    expect(allCounts(socket).socket).toEqual(plus(PROVIDER_SOCKET, three));
    unmount();
    expect(allCounts(socket)).toEqual({ socket: {}, manager: {}, any: 0 });
  });
});

describe("hooks with the REST API unreachable", () => {
  it("report the failure instead of throwing", async () => {
    const { result } = renderHook(() => useTaskBoard(1), { wrapper: wrapperFor(false) });
    await waitFor(() => expect(result.current.error).not.toBeNull(), { timeout: 3000 });
    expect(result.current.error).toMatch(/fetch|ECONNREFUSED|network/i);
    expect(result.current.tasks).toEqual([]);
  });
});

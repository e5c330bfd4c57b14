// One Socket.IO connection for the whole page. The provider owns the connection's life:
// it connects on mount and disconnects on unmount, reports the connection state (for the
// reconnecting banner), rejoins project rooms after a reconnection, and answers the hub's
// `Authentication failed: invalid token` by asking for a fresh token and connecting again.

import { createContext, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { io, type Socket } from "socket.io-client";
import type { Api, TokenSource } from "../api";
import type { User } from "../types";
import { listen } from "./listen";
import { ProjectRooms } from "./rooms";

export type ConnectionStatus =
  | "connecting" // the first connection is being made
  | "connected"
  | "reconnecting" // it was lost (or refused) and is being made again
  | "failed" // the server keeps refusing the sign-in: sign in again
  | "closed"; // disconnected on purpose

export const INVALID_TOKEN = "Authentication failed: invalid token";
export const MISSING_TOKEN = "Authentication token missing";
/** Consecutive refusals after which the provider stops refreshing and reports `failed`. */
export const MAX_AUTH_RETRIES = 3;

export interface Realtime {
  socket: Socket;
  api: Api;
  user: User;
  status: ConnectionStatus;
  rooms: ProjectRooms;
}

const RealtimeContext = createContext<Realtime | null>(null);

export function useRealtime(): Realtime {
  const value = useContext(RealtimeContext);
  if (!value) throw new Error("useRealtime() must be used inside <SocketProvider>");
  return value;
}

/** The page's one socket: not connected yet; the provider connects it. */
export function createHubSocket(url: string, tokens: TokenSource): Socket {
  return io(url, {
    autoConnect: false,
    // called on every (re)connection, so a refreshed token is the one sent
    auth: (cb) => cb({ token: tokens.token() }),
    reconnectionDelay: 250,
    reconnectionDelayMax: 2000,
  });
}

interface Props {
  socket: Socket;
  api: Api;
  tokens: TokenSource;
  user: User;
  /** Connect on mount (the page); tests of listeners pass false. */
  connect?: boolean;
  children: ReactNode;
}

export function SocketProvider({ socket, api, tokens, user, connect = true, children }: Props) {
  const [status, setStatus] = useState<ConnectionStatus>(socket.connected ? "connected" : "connecting");
  const rooms = useMemo(() => new ProjectRooms(socket), [socket]);

  useEffect(() => {
    let everConnected = socket.connected;
    let authFailures = 0;
    let alive = true;
    const lost = (): void => setStatus(everConnected ? "reconnecting" : "connecting");

    const stopRooms = rooms.attach();
    const stopSocket = listen(socket, {
      connect: () => {
        everConnected = true;
        authFailures = 0;
        setStatus("connected");
      },
      disconnect: (reason: string) => {
        if (reason === "io client disconnect") setStatus("closed");
        else lost();
      },
      connect_error: (err: Error) => {
        const refused = err.message === INVALID_TOKEN || err.message === MISSING_TOKEN;
        if (!refused) {
          // a transport error: the manager keeps trying by itself
          lost();
          return;
        }
        authFailures += 1;
        if (authFailures > MAX_AUTH_RETRIES) {
          setStatus("failed");
          return;
        }
        lost();
        tokens.refresh().then(
          () => {
            if (alive) socket.connect();
          },
          () => {
            if (alive) setStatus("failed");
          },
        );
      },
    });
    const manager = socket.io;
    const onAttempt = (): void => lost();
    manager.on("reconnect_attempt", onAttempt);
    if (connect) socket.connect();
    return () => {
      alive = false;
      manager.off("reconnect_attempt", onAttempt);
      stopSocket();
      stopRooms();
      if (connect) socket.disconnect();
    };
  }, [socket, rooms, tokens, connect]);

  const value = useMemo(() => ({ socket, api, user, status, rooms }), [socket, api, user, status, rooms]);
  return <RealtimeContext.Provider value={value}>{children}</RealtimeContext.Provider>;
}

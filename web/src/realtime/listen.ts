// Adding socket listeners so that clean-up removes exactly those functions and no others:
// `off(event)` without the function would also remove what other hooks added.

import type { Socket } from "socket.io-client";

// socket.io-client types its events per app; the hooks receive the server's JSON payloads.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Handler = (...args: any[]) => void;

export function listen(socket: Socket, handlers: Record<string, Handler>): () => void {
  const added = Object.entries(handlers);
  for (const [event, fn] of added) socket.on(event, fn);
  return () => {
    for (const [event, fn] of added) socket.off(event, fn);
  };
}

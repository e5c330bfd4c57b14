// Where the hub is. The server injects a tag into the page it serves (server/http/static.py):
//   <meta name="hub" content='{"port": null, "url": null, "sameOrigin": true}'>
// By default the hub shares the page's port, so the page talks to its own origin. When the
// hub has a port of its own (--hub-port), the tag names it and the hub is reached on the
// page's own host name, so a page opened as localhost or as 127.0.0.1 reaches the hub under
// the same name, which the hub's CORS allowlist accepts. Behind a reverse proxy the hub is on
// the page's own origin too.

export interface HubConfig {
  url: string;
}

export function hubUrlFrom(meta: string | null, location: Pick<Location, "protocol" | "hostname" | "origin">): string {
  if (meta) {
    try {
      const parsed = JSON.parse(meta) as { port?: number | null; url?: string | null; sameOrigin?: boolean };
      if (parsed.url) return parsed.url;
      if (!parsed.sameOrigin && typeof parsed.port === "number") {
        const host = location.hostname.includes(":") ? `[${location.hostname}]` : location.hostname;
        return `${location.protocol}//${host}:${parsed.port}`;
      }
    } catch {
      // a malformed tag: the page's own origin, as without one
    }
  }
  return location.origin;
}

export function readHubConfig(): HubConfig {
  const meta = document.querySelector('meta[name="hub"]')?.getAttribute("content") ?? null;
  return { url: hubUrlFrom(meta, window.location) };
}

// Where the hub is. The app port serves this page and injects
// <meta name="hub" content='{"port": 4001, "url": null, "sameOrigin": false}'>
// (server/http/static.py). By default the hub is reached on the page's own host name, so a
// page opened as localhost or as 127.0.0.1 reaches the hub under the same name, which the
// hub's CORS allowlist accepts. Behind a reverse proxy the hub is on the page's own origin.

export interface HubConfig {
  url: string;
}

const DEFAULT_HUB_PORT = 4001;

export function hubUrlFrom(meta: string | null, location: Pick<Location, "protocol" | "hostname" | "origin">): string {
  let port = DEFAULT_HUB_PORT;
  if (meta) {
    try {
      const parsed = JSON.parse(meta) as { port?: number; url?: string | null; sameOrigin?: boolean };
      if (parsed.url) return parsed.url;
      if (parsed.sameOrigin) return location.origin;
      if (typeof parsed.port === "number") port = parsed.port;
    } catch {
      // a malformed tag falls back to the default port
    }
  }
  const host = location.hostname.includes(":") ? `[${location.hostname}]` : location.hostname;
  return `${location.protocol}//${host}:${port}`;
}

export function readHubConfig(): HubConfig {
  const meta = document.querySelector('meta[name="hub"]')?.getAttribute("content") ?? null;
  return { url: hubUrlFrom(meta, window.location) };
}

// The board's address. A project is kept in the hash (`#project=3`), so a reload keeps it;
// a notification's link is a path (`/projects/3/tasks/7` for a task, `/projects/3/messages/12`
// for a chat message that mentions the user: what the server stores), which the server answers
// with the page, and which opens the board at that project, with the task or message shown.

export interface Address {
  project: string | null;
  task: string | null;
  message: string | null;
}

export function addressFrom(location: Pick<Location, "pathname" | "hash">): Address {
  const path = /^\/projects\/([^/]+)(?:\/(tasks|messages)\/([^/]+))?\/?$/.exec(location.pathname);
  if (path) {
    const item = path[3] ? decodeURIComponent(path[3]) : null;
    return {
      project: decodeURIComponent(path[1]),
      task: path[2] === "tasks" ? item : null,
      message: path[2] === "messages" ? item : null,
    };
  }
  const read = (name: string): string | null => {
    const found = new RegExp(`(?:^#|&)${name}=([^&]+)`).exec(location.hash);
    return found ? decodeURIComponent(found[1]) : null;
  };
  return { project: read("project"), task: read("task"), message: read("message") };
}

/** Open `link` (a path of this page, such as a notification's) without reloading. */
export function openLink(link: string): void {
  window.history.pushState(null, "", link);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

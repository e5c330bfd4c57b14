// The board's address. A project is kept in the hash (`#project=3`), so a reload keeps it;
// a notification's link is a path (`/projects/3/tasks/7`, what the server stores), which the
// server answers with the page, and which opens the board at that project and task.

export interface Address {
  project: string | null;
  task: string | null;
}

export function addressFrom(location: Pick<Location, "pathname" | "hash">): Address {
  const path = /^\/projects\/([^/]+)(?:\/tasks\/([^/]+))?\/?$/.exec(location.pathname);
  if (path) return { project: decodeURIComponent(path[1]), task: path[2] ? decodeURIComponent(path[2]) : null };
  const project = /project=([^&]+)/.exec(location.hash);
  const task = /task=([^&]+)/.exec(location.hash);
  return { project: project ? decodeURIComponent(project[1]) : null, task: task ? decodeURIComponent(task[1]) : null };
}

/** Open `link` (a path of this page, such as a notification's) without reloading. */
export function openLink(link: string): void {
  window.history.pushState(null, "", link);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

import { useEffect, useState } from "react";
import { useRealtime } from "../realtime";
import type { Id, Project } from "../types";
import { ChatPanel } from "./ChatPanel";
import { ConnectionBanner } from "./ConnectionBanner";
import { NotificationBell } from "./NotificationBell";
import { PresenceList } from "./PresenceList";
import { TaskBoardView } from "./TaskBoardView";
import { addressFrom } from "./address";

/** The selected project lives in the address (`#project=3`), so a link or a reload keeps it;
 * a notification's link (`/projects/3/tasks/7`) selects its project and shows its task. */
function projectFromHash(): string | null {
  return addressFrom(window.location).project;
}

/** A link's path (`/projects/3/tasks/7`) becomes the board's own address (`/#project=3`), so
 * a reload stays on the board rather than showing the task again. */
function boardAddress(project: string): void {
  window.history.replaceState(null, "", `/#project=${encodeURIComponent(project)}`);
}

export function BoardPage({ onSignOut }: { onSignOut: () => void }) {
  const { api, user } = useRealtime();
  const [projects, setProjects] = useState<Project[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [selected, setSelected] = useState<string | null>(projectFromHash);
  const [shown, setShown] = useState<string | null>(() => addressFrom(window.location).task);

  useEffect(() => {
    let current = true;
    api.projects().then(
      (list) => {
        if (!current) return;
        setProjects(list);
        setSelected((s) => (s !== null && list.some((p) => String(p.id) === s) ? s : list.length ? String(list[0].id) : null));
      },
      (err: Error) => current && setError(err.message),
    );
    const onHash = (): void => {
      const address = addressFrom(window.location);
      if (address.project !== null) {
        setSelected(address.project);
        if (window.location.pathname !== "/") boardAddress(address.project);
      }
      setShown(address.task);
    };
    window.addEventListener("hashchange", onHash);
    window.addEventListener("popstate", onHash);
    return () => {
      current = false;
      window.removeEventListener("hashchange", onHash);
      window.removeEventListener("popstate", onHash);
    };
  }, [api]);

  useEffect(() => {
    if (selected === null) return;
    if (window.location.pathname !== "/") {
      boardAddress(selected);
    } else if (projectFromHash() !== selected) {
      window.location.hash = `project=${encodeURIComponent(selected)}`;
    }
  }, [selected]);

  const project = projects?.find((p) => String(p.id) === selected) ?? null;
  const projectId: Id | null = project ? project.id : null;

  return (
    <div className="page">
      <header className="top">
        <strong className="brand">Board</strong>
        <label className="picker">
          Project{" "}
          <select
            value={selected ?? ""}
            onChange={(e) => {
              setShown(null);
              setSelected(e.target.value);
            }}
            data-testid="project-picker"
          >
            {projects === null && <option value="">loading…</option>}
            {projects?.length === 0 && <option value="">no projects</option>}
            {projects?.map((p) => (
              <option key={String(p.id)} value={String(p.id)}>
                {p.name}
              </option>
            ))}
          </select>
        </label>
        <PresenceList projectId={projectId} />
        <span className="spacer" />
        <NotificationBell />
        <span className="me" data-testid="me">
          {user.userName}
        </span>
        <button type="button" className="link" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <ConnectionBanner />
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {projects?.length === 0 && <p className="muted pad">You are not a member of any project yet.</p>}
      {projectId !== null && (
        <main className="workspace">
          <TaskBoardView projectId={projectId} shownTask={shown} />
          <ChatPanel projectId={projectId} />
        </main>
      )}
    </div>
  );
}

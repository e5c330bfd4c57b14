import { useEffect, useState } from "react";
import { useMembers, useProjects, useRealtime } from "../realtime";
import type { Id } from "../types";
import { AdminPanel } from "./AdminPanel";
import { ChatPanel } from "./ChatPanel";
import { ConnectionBanner } from "./ConnectionBanner";
import { NotificationBell } from "./NotificationBell";
import { PresenceList } from "./PresenceList";
import { TaskBoardView } from "./TaskBoardView";
import { addressFrom, type Address } from "./address";

/** The selected project lives in the address (`#project=3`), so a link or a reload keeps it;
 * a notification's link (`/projects/3/tasks/7`, `/projects/3/messages/12`) selects its project
 * and shows its task or message. */
function projectFromHash(): string | null {
  return addressFrom(window.location).project;
}

/** A link's path (`/projects/3/tasks/7`) becomes the board's own address (`/#project=3`), so
 * a reload stays on the board rather than showing the task again. */
function boardAddress(project: string): void {
  window.history.replaceState(null, "", `/#project=${encodeURIComponent(project)}`);
}

/** On a narrow screen one of the two is shown at a time. */
type Pane = "board" | "chat";

export function BoardPage({ onSignOut }: { onSignOut: () => void }) {
  const { api, user } = useRealtime();
  const { projects, error, removed, createProject } = useProjects();
  const [role, setRole] = useState<string | null>(null);
  const [selected, setSelected] = useState<string | null>(projectFromHash);
  const [shown, setShown] = useState<Pick<Address, "task" | "message">>(() => addressFrom(window.location));
  const [pane, setPane] = useState<Pane>(() => (addressFrom(window.location).message ? "chat" : "board"));
  const [adminOpen, setAdminOpen] = useState(false);
  const [lost, setLost] = useState<string | null>(null);

  useEffect(() => {
    let current = true;
    api.me().then(
      (me) => current && setRole(me.role),
      () => current && setRole(null),
    );
    const onHash = (): void => {
      const address = addressFrom(window.location);
      if (address.project !== null) {
        setSelected(address.project);
        if (window.location.pathname !== "/") boardAddress(address.project);
      }
      setShown({ task: address.task, message: address.message });
      if (address.message) setPane("chat");
      else if (address.task) setPane("board");
    };
    window.addEventListener("hashchange", onHash);
    window.addEventListener("popstate", onHash);
    return () => {
      current = false;
      window.removeEventListener("hashchange", onHash);
      window.removeEventListener("popstate", onHash);
    };
  }, [api]);

  // the list changed (loaded, or a project added or removed): keep a project selected
  useEffect(() => {
    if (projects === null) return;
    if (selected !== null && projects.some((p) => String(p.id) === selected)) return;
    // a project this user cannot see (a stale link, or one they were removed from): the first
    setSelected(projects.length ? String(projects[0].id) : null);
    setShown({ task: null, message: null });
  }, [projects, selected]);

  // removed from the project on screen: say so (the effect above moves to another)
  useEffect(() => {
    if (removed && String(removed.projectId) === selected) {
      setLost(removed.name ?? `project ${String(removed.projectId)}`);
      setShown({ task: null, message: null });
    }
    // only when a removal arrives, not when the selection changes
  }, [removed]); // eslint-disable-line react-hooks/exhaustive-deps

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
  const members = useMembers(projectId);
  const isAdmin = role === "admin";

  return (
    <div className="page">
      <header className="top">
        <strong className="brand">Board</strong>
        <label className="picker">
          <span className="label">Project</span>{" "}
          <select
            aria-label="Project"
            value={selected ?? ""}
            onChange={(e) => {
              setShown({ task: null, message: null });
              setLost(null);
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
        {isAdmin && (
          <button type="button" onClick={() => setAdminOpen((o) => !o)} aria-expanded={adminOpen} data-testid="admin-open">
            Manage
          </button>
        )}
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
        <p className="error pad" role="alert">
          {error}
        </p>
      )}
      {lost && (
        <p className="banner warn" role="status" data-testid="project-removed">
          You were removed from “{lost}”{project ? `; now showing “${project.name}”` : ""}.{" "}
          <button type="button" className="link" onClick={() => setLost(null)}>
            OK
          </button>
        </p>
      )}
      {adminOpen && isAdmin && (
        <AdminPanel
          project={project}
          members={members}
          createProject={createProject}
          onCreated={(p) => {
            setShown({ task: null, message: null });
            setSelected(String(p.id));
          }}
          onClose={() => setAdminOpen(false)}
        />
      )}
      {projects?.length === 0 && <p className="muted pad">You are not a member of any project yet.</p>}
      {projectId !== null && (
        <>
          <nav className="panes" role="tablist" aria-label="Board or chat">
            {(["board", "chat"] as const).map((p) => (
              <button
                key={p}
                type="button"
                role="tab"
                id={`tab-${p}`}
                aria-selected={pane === p}
                aria-controls={`pane-${p}`}
                className={pane === p ? "active" : ""}
                onClick={() => setPane(p)}
                data-testid={`tab-${p}`}
              >
                {p === "board" ? "Board" : "Chat"}
              </button>
            ))}
          </nav>
          <main className="workspace" data-pane={pane}>
            <div className="pane pane-board" id="pane-board" role="tabpanel" aria-labelledby="tab-board">
              <TaskBoardView projectId={projectId} members={members.members} shownTask={shown.task} />
            </div>
            <div className="pane pane-chat" id="pane-chat" role="tabpanel" aria-labelledby="tab-chat">
              <ChatPanel projectId={projectId} members={members.members} shownMessage={shown.message} />
            </div>
          </main>
        </>
      )}
    </div>
  );
}

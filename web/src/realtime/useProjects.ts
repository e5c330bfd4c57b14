// The projects this user belongs to (an admin: all of them), kept current by `projectAdded`
// and `projectRemoved`, which the server sends to the user's own room (every tab of theirs)
// when an admin adds them to a project, removes them, or when they create one. Fetched again
// after a reconnection.

import { useCallback, useEffect, useRef, useState } from "react";
import { sameId, type Id, type Project, type ProjectAdded, type ProjectRemoved } from "../types";
import { listen } from "./listen";
import { useRealtime } from "./SocketProvider";

export interface Projects {
  /** null until the first answer. */
  projects: Project[] | null;
  error: string | null;
  /** The latest project this user was removed from (its name when it was known). */
  removed: { projectId: Id; name: string | null } | null;
  /** Admins: a new project (`projectAdded` brings it to the other tabs). */
  createProject: (name: string) => Promise<Project>;
}

export function useProjects(): Projects {
  const { socket, api } = useRealtime();
  const [projects, setProjects] = useState<Project[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [removed, setRemoved] = useState<Projects["removed"]>(null);
  const shown = useRef<Project[] | null>(null);

  useEffect(() => {
    shown.current = projects;
  }, [projects]);

  useEffect(() => {
    let current = true;
    const fetchProjects = (): void => {
      api.projects().then(
        (list) => {
          if (!current) return;
          setProjects(list);
          setError(null);
        },
        (err: Error) => current && setError(err.message),
      );
    };
    fetchProjects();
    const stop = listen(socket, {
      connect: fetchProjects,
      projectAdded: (e: ProjectAdded) => {
        if (!e?.project) return;
        setProjects((list) => withProject(list ?? [], e.project));
      },
      projectRemoved: (e: ProjectRemoved) => {
        const name = shown.current?.find((p) => sameId(p.id, e.projectId))?.name ?? null;
        setRemoved({ projectId: e.projectId, name });
        setProjects((list) => (list ? list.filter((p) => !sameId(p.id, e.projectId)) : list));
      },
    });
    return () => {
      current = false;
      stop();
    };
  }, [socket, api]);

  const createProject = useCallback(
    async (name: string): Promise<Project> => {
      const project = await api.createProject(name);
      setProjects((list) => withProject(list ?? [], project));
      return project;
    },
    [api],
  );

  return { projects, error, removed, createProject };
}

/** The list with `project` in it once (a newer copy replaces the old), in id order. */
export function withProject(list: Project[], project: Project): Project[] {
  const others = list.filter((p) => !sameId(p.id, project.id));
  return [...others, project].sort((a, b) => {
    const na = Number(a.id);
    const nb = Number(b.id);
    return !Number.isNaN(na) && !Number.isNaN(nb) ? na - nb : String(a.id).localeCompare(String(b.id));
  });
}

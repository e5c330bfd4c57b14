export { SocketProvider, createHubSocket, useRealtime, type ConnectionStatus, type Realtime } from "./SocketProvider";
export { useProjectRoom } from "./useProjectRoom";
export { useProjectChat, type ProjectChat } from "./useProjectChat";
export { useTaskBoard, TaskConflict, type CardNotice, type TaskBoard } from "./useTaskBoard";
export { useNotifications, type Notifications } from "./useNotifications";
export { usePresence } from "./usePresence";
export { useCursors, type Cursor } from "./useCursors";
export { useProjects, type Projects } from "./useProjects";
export { useMembers, type Members } from "./useMembers";

export { SocketProvider, createHubSocket, useRealtime, type ConnectionStatus, type Realtime } from "./SocketProvider";
export { useProjectRoom } from "./useProjectRoom";
export { useProjectChat, type ProjectChat } from "./useProjectChat";
export { useTaskBoard, type TaskBoard } from "./useTaskBoard";
export { useNotifications, type Notifications } from "./useNotifications";
export { usePresence } from "./usePresence";
export { useCursors, type Cursor } from "./useCursors";

import { useMemo, useState } from "react";
import { Api } from "../api";
import { readHubConfig } from "../config";
import { createHubSocket, SocketProvider } from "../realtime";
import { Session, type SessionData } from "../session";
import { BoardPage } from "./BoardPage";
import { SignIn } from "./SignIn";

export function App() {
  const [data, setData] = useState<SessionData | null>(() => Session.restore());
  if (!data) return <SignIn onSignedIn={setData} />;
  return (
    <Connected
      key={data.token}
      data={data}
      onSignOut={() => {
        Session.forget();
        setData(null);
      }}
    />
  );
}

/** One session, one API client, one socket, for as long as the user stays signed in. */
function Connected({ data, onSignOut }: { data: SessionData; onSignOut: () => void }) {
  const session = useMemo(() => new Session(data), [data]);
  const api = useMemo(() => new Api(session), [session]);
  const socket = useMemo(() => createHubSocket(readHubConfig().url, session), [session]);
  return (
    <SocketProvider socket={socket} api={api} tokens={session} user={session.user}>
      <BoardPage onSignOut={onSignOut} />
    </SocketProvider>
  );
}

// Vitest global setup for tests/live.test.tsx: one real `python -m server --dev` (the same
// starter as the end-to-end test), its URLs handed to the tests through `provide`.

import { DevServer } from "../e2e/server.mjs";

export default async function setup({ provide }) {
  const server = new DevServer();
  await server.start();
  provide("appUrl", server.url);
  provide("hubUrl", `http://127.0.0.1:${server.hubPort}`);
  return async () => {
    await server.close();
  };
}

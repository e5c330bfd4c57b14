// Vitest global setup for tests/live.test.tsx: one real `python -m server --dev` (the same
// starter as the end-to-end test), its URLs handed to the tests through `provide`.

import { DevServer } from "../e2e/server.mjs";

export default async function setup({ provide }) {
  const server = new DevServer();
  await server.start();
  provide("appUrl", server.url);
  provide("hubUrl", server.url); // one port for both
  return async () => {
    await server.close();
  };
}

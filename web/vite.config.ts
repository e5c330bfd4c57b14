import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// `npm run build` writes dist/, which the app port serves at `/` (server/http/static.py).
// `npx vite` (development) proxies the REST API to a server started with `make run`.
export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true },
  server: { proxy: { "/api": "http://127.0.0.1:4000" } },
  test: {
    environment: "jsdom",
    include: ["tests/**/*.test.ts", "tests/**/*.test.tsx"],
    // tests/live.test.tsx runs the hooks against a real server started here
    globalSetup: ["tests/live.setup.mjs"],
    testTimeout: 15_000,
  },
});

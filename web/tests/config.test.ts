import { describe, expect, it } from "vitest";
import { hubUrlFrom } from "../src/config";

const at = (hostname: string) => ({ protocol: "http:", hostname, origin: `http://${hostname}:4000` });

describe("hubUrlFrom", () => {
  it("uses the page's host name with the hub port", () => {
    expect(hubUrlFrom('{"port":4555,"url":null,"sameOrigin":false}', at("127.0.0.1"))).toBe("http://127.0.0.1:4555");
    expect(hubUrlFrom('{"port":4555,"url":null,"sameOrigin":false}', at("localhost"))).toBe("http://localhost:4555");
    expect(hubUrlFrom('{"port":4555}', at("::1"))).toBe("http://[::1]:4555");
  });

  it("uses the page's origin on one port and behind a proxy, and an explicit URL over everything", () => {
    expect(hubUrlFrom('{"port":null,"url":null,"sameOrigin":true}', at("board.test"))).toBe("http://board.test:4000");
    expect(hubUrlFrom('{"port":4555,"url":null,"sameOrigin":true}', at("board.test"))).toBe("http://board.test:4000");
    expect(hubUrlFrom('{"port":4555,"url":"https://hub.test","sameOrigin":true}', at("x"))).toBe("https://hub.test");
  });

  it("falls back to the page's own origin without a usable tag", () => {
    expect(hubUrlFrom(null, at("localhost"))).toBe("http://localhost:4000");
    expect(hubUrlFrom("not json", at("localhost"))).toBe("http://localhost:4000");
  });
});

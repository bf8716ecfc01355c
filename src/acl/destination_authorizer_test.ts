import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseRules } from "../config/rules.ts";
import type { Authorization, AuthorizeQuestion } from "../server/authorize.ts";
import { destinationAuthorizer, type DestinationAuthorizerOptions } from "./destination_authorizer.ts";
import type { ClientName } from "./hosts_access.ts";
import { compileRules } from "./rules.ts";

function question(client: string, target: string): AuthorizeQuestion {
  return {
    client: {
      address: { host: client, port: 40000, family: 4 },
      local: { host: "192.0.2.1", port: 1080, family: 4 },
    },
    identity: { user: "", method: "none" },
    request: {
      version: "5",
      command: "connect",
      target: { kind: /^[\d.]+$/.test(target) ? "ipv4" : "domain", host: target, port: 443 },
      userId: "",
      responder: null as never,
    },
  } as AuthorizeQuestion;
}

function authorizer(text: string, options: Partial<DestinationAuthorizerOptions> = {}) {
  const parsed = parseRules(text, "rules");
  assert.ok(parsed.ok, JSON.stringify(parsed.issues));
  return destinationAuthorizer({
    rules: compileRules(parsed.rules),
    blockInternal: false,
    isInternal: () => false,
    resolve: () => Promise.resolve(["198.51.100.7"]),
    ...options,
  });
}

/** `allowed`, or the refusing rule. */
async function outcome(authorization: Authorization | Promise<Authorization>): Promise<string> {
  const result = await authorization;
  return result.allowed ? "allowed" : result.reason;
}

describe("destinationAuthorizer: rules naming clients", () => {
  const names: Record<string, ClientName> = {
    "192.0.2.7": { name: "host.evil.example" },
    "192.0.2.8": "paranoid",
    "192.0.2.9": "unknown",
    "192.0.2.10": { name: "evil-host.example" },
  };

  test("a 'from' host name or domain matches the client's verified name", async () => {
    const asked: string[] = [];
    const clientName = (address: string) => {
      asked.push(address);
      return Promise.resolve(names[address] ?? "unknown");
    };
    const rules = authorizer("block from .evil.example\nblock from evil-host.example to 198.51.100.7\n", {
      clientName,
    });
    assert.equal(await outcome(rules.authorize(question("192.0.2.7", "198.51.100.1"))), "rules:1");
    assert.equal(await outcome(rules.authorize(question("192.0.2.7", "www.example"))), "rules:1");
    assert.equal(await outcome(rules.authorize(question("192.0.2.10", "198.51.100.7"))), "rules:2");
    assert.equal(await outcome(rules.authorize(question("192.0.2.10", "198.51.100.8"))), "allowed");
    assert.deepEqual(asked, ["192.0.2.7", "192.0.2.7", "192.0.2.10", "192.0.2.10"]);
  });

  test("a client without a verified name (unknown, paranoid) never matches a name", async () => {
    const rules = authorizer("block from .example\n", {
      clientName: (address) => Promise.resolve(names[address] ?? "unknown"),
    });
    assert.equal(await outcome(rules.authorize(question("192.0.2.8", "198.51.100.1"))), "allowed");
    assert.equal(await outcome(rules.authorize(question("192.0.2.9", "198.51.100.1"))), "allowed");
  });

  test("without a lookup (no -r) client names never match", async () => {
    const rules = authorizer("block from .evil.example\n");
    assert.equal(await outcome(rules.authorize(question("192.0.2.7", "198.51.100.1"))), "allowed");
  });

  test("the name is not looked up when no rule names a client", () => {
    let asked = 0;
    const rules = authorizer("block from 10.0.0.0/8\nblock to .example\n", {
      clientName: () => {
        asked++;
        return Promise.resolve("unknown");
      },
    });
    const answer = rules.authorize(question("192.0.2.7", "198.51.100.1"));
    assert.deepEqual(answer, { allowed: true }, "answered at once, without a promise");
    assert.equal(asked, 0);
  });
});

// The negotiate and authorize seams: SOCKS5 authenticators, SOCKS4 refused
// by policy, and an authorizer that refuses.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { decodeUserPassRequest, encodeUserPassReply } from "../protocol/socks5_auth.ts";
import { fixedRouter, runtimeDialer, startTarget } from "../../tests/helpers/fake_dialer.ts";
import { installLogCapture, removeLogCapture } from "../../tests/helpers/log_capture.ts";
import { createMemoryRuntime } from "../../tests/helpers/memory_runtime.ts";
import { testPolicy, withServer } from "../../tests/helpers/server_script.ts";
import {
  socks4aConnect,
  socks4Reply,
  socks4Request,
  SOCKS5_GREETING,
  socks5Connect,
  socks5Reply,
} from "../../tests/helpers/socks_bytes.ts";
import type { AuthorizeQuestion, Authorizer } from "./authorize.ts";
import { NO_AUTHENTICATION, type Socks5Authenticator } from "./negotiate.ts";
import { Refusal } from "./refusal.ts";

const CLIENT = { host: "192.0.2.7", port: 40000, family: 4 as const };

before(installLogCapture);
after(removeLogCapture);

function list(bytes: Uint8Array): number[] {
  return [...bytes];
}

/** RFC 1929 sub-negotiation for one user: alice / secret. */
const PASSWORD: Socks5Authenticator = {
  method: 0x02,
  async authenticate(handshake) {
    const { username, password } = await handshake.read(decodeUserPassRequest, () => encodeUserPassReply(false));
    if (username !== "alice" || password !== "secret") {
      throw new Refusal("5", "auth_failed", `password rejected for ${username}`, encodeUserPassReply(false));
    }
    handshake.connection.write(encodeUserPassReply(true));
    return { user: username, method: "password" };
  },
};

/** `01 ULEN UNAME PLEN PASSWD`. */
function userPass(user: string, password: string): number[] {
  const u = [...new TextEncoder().encode(user)];
  const p = [...new TextEncoder().encode(password)];
  return [1, u.length, ...u, p.length, ...p];
}

async function network() {
  const runtime = createMemoryRuntime({ sourceHost4: "10.0.0.5" });
  const target = await startTarget(runtime, "203.0.113.10", 80);
  const dialer = runtimeDialer(runtime, { names: { "example.org": "203.0.113.10" } });
  return { runtime, target, dialer, router: fixedRouter(dialer) };
}

describe("SOCKS5 authenticators", () => {
  test("method 02: the sub-negotiation runs, and its user reaches the log line, the record and the dialer", async () => {
    const { runtime, target, dialer, router } = await network();
    const policy = testPolicy(router, { negotiation: { socks5: [PASSWORD], socks4: false } });
    await withServer({ runtime, policy }, async (h) => {
      const client = h.client(CLIENT);
      client.send([5, 2, 0, 2]);
      assert.deepEqual(list(await client.read(2)), [5, 2]);
      client.send(userPass("alice", "secret"));
      assert.deepEqual(list(await client.read(2)), [1, 0]);
      client.send(socks5Connect("203.0.113.10", 80));
      assert.deepEqual(list(await client.read(10)), socks5Reply(0, "10.0.0.5", runtime.outbound[0]?.local.port));
      client.close();
      await (await target.peer()).waitForClose();
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.user, "alice");
      assert.equal(dialer.calls[0]?.context.userId, "alice");
      assert.equal(h.log.lines()[0], "192.0.2.7:40000 5-CON 203.0.113.10:80(ipv4) alice direct");
      assert.equal(h.log.entries()[0]?.properties.user, "alice");
    });
  });

  test("the server's order of preference wins over the client's", async () => {
    const { runtime, router } = await network();
    const policy = testPolicy(router, { negotiation: { socks5: [PASSWORD, NO_AUTHENTICATION], socks4: true } });
    await withServer({ runtime, policy }, async (h) => {
      const client = h.client(CLIENT);
      client.send([5, 2, 0, 2]);
      assert.deepEqual(list(await client.read(2)), [5, 2]);
      const other = h.client(CLIENT);
      other.send(SOCKS5_GREETING);
      assert.deepEqual(list(await other.read(2)), [5, 0], "no authentication when the client offers only that");
      client.close();
      other.close();
    });
  });

  test("a wrong password: 01 01, then closed; the refusal is logged and recorded", async () => {
    const { runtime, router } = await network();
    const policy = testPolicy(router, { negotiation: { socks5: [PASSWORD], socks4: false } });
    await withServer({ runtime, policy }, async (h) => {
      const client = h.client(CLIENT);
      client.send([5, 1, 2, ...userPass("alice", "guess")]);
      assert.deepEqual(list(await client.readToEnd()), [5, 2, 1, 1]);
      client.close();
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.outcome, "auth_failed");
      assert.deepEqual(h.log.entries().map((line) => [line.level, line.text]), [
        ["warning", "192.0.2.7:40000 5: password rejected for alice"],
      ]);
      assert.equal(router.requests.length, 0);
    });
  });

  test("a client offering only 00 to a password-only server gets 05 FF", async () => {
    const policy = testPolicy(fixedRouter({ dial: () => Promise.reject(new Error("no")) }), {
      negotiation: { socks5: [PASSWORD], socks4: false },
    });
    await withServer({ policy }, async (h) => {
      const client = h.client(CLIENT);
      client.send(SOCKS5_GREETING);
      assert.deepEqual(list(await client.readToEnd()), [5, 0xff]);
      client.close();
      await h.waitForRecords(1);
      assert.equal(h.log.lines()[0], "192.0.2.7:40000 5: no acceptable authentication method (offered 0x00)");
    });
  });
});

describe("SOCKS4 under a policy that requires a password", () => {
  for (
    const [name, request] of [["SOCKS4", socks4Request(1, "203.0.113.10", 80, "bob")], [
      "SOCKS4a",
      socks4aConnect("example.org", 80),
    ]] as const
  ) {
    test(`${name} is refused with VN 0, CD 5B, before routing`, async () => {
      const { runtime, router } = await network();
      const policy = testPolicy(router, { negotiation: { socks5: [PASSWORD], socks4: false } });
      await withServer({ runtime, policy }, async (h) => {
        const client = h.client(CLIENT);
        client.send(request);
        assert.deepEqual(list(await client.readToEnd()), socks4Reply(0x5b));
        client.close();
        const [record] = await h.waitForRecords(1);
        assert.equal(record?.outcome, "refused");
        const version = name === "SOCKS4" ? "4" : "4a";
        assert.deepEqual(h.log.entries().map((line) => [line.level, line.text]), [
          ["warning", `192.0.2.7:40000 ${version}: SOCKS4 is refused because user/password authentication is required`],
        ]);
        assert.equal(router.requests.length, 0);
        assert.equal(runtime.connects.length, 0);
      });
    });
  }
});

describe("authorizers", () => {
  const refuseAll = (questions: AuthorizeQuestion[]): Authorizer => ({
    authorize(question) {
      questions.push(question);
      return Promise.resolve({ allowed: false, reason: "srelay.rules:7" });
    },
  });

  test('a refusal gives SOCKS5 REP 02 and "not allowed by <reason>", before routing', async () => {
    const { runtime, router } = await network();
    const questions: AuthorizeQuestion[] = [];
    await withServer({ runtime, policy: testPolicy(router, { authorizer: refuseAll(questions) }) }, async (h) => {
      const client = h.client(CLIENT);
      client.send([...SOCKS5_GREETING, ...socks5Connect("203.0.113.10", 80)]);
      assert.deepEqual(list(await client.readToEnd()), [5, 0, ...socks5Reply(2)]);
      client.close();
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.outcome, "not_allowed");
      assert.equal(record?.version, "5");
      assert.equal(record?.target, "203.0.113.10:80");
      assert.deepEqual(h.log.entries().map((line) => [line.level, line.text]), [
        ["warning", "192.0.2.7:40000 5-CON: 203.0.113.10:80: not allowed by srelay.rules:7"],
      ]);
      assert.equal(router.requests.length, 0);
      assert.equal(questions.length, 1);
      assert.deepEqual(questions[0]?.identity, { user: "", method: "none" });
      assert.equal(questions[0]?.request.command, "connect");
      assert.deepEqual(questions[0]?.request.target, { kind: "ipv4", host: "203.0.113.10", port: 80 });
      assert.deepEqual(questions[0]?.client.address, CLIENT);
    });
  });

  test("a refusal gives SOCKS4 VN 0, CD 5B; the SOCKS4 identity is the unverified USERID", async () => {
    const { runtime, router } = await network();
    const questions: AuthorizeQuestion[] = [];
    await withServer({ runtime, policy: testPolicy(router, { authorizer: refuseAll(questions) }) }, async (h) => {
      const client = h.client(CLIENT);
      client.send(socks4Request(1, "203.0.113.10", 80, "bob"));
      assert.deepEqual(list(await client.readToEnd()), socks4Reply(0x5b));
      client.close();
      await h.waitForRecords(1);
      assert.equal(h.log.lines()[0], "192.0.2.7:40000 4-CON: 203.0.113.10:80: not allowed by srelay.rules:7");
      assert.deepEqual(questions[0]?.identity, { user: "bob", method: "userid" });
      assert.equal(h.records[0]?.user, "bob");
    });
  });
});

// The admit seam: admitters of the listener (scope) and of the policy, run
// in that order before any SOCKS byte is read.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Decoded } from "../protocol/decoded.ts";
import { needBytes } from "../protocol/decoded.ts";
import type { NetAddress } from "../runtime/types.ts";
import { fixedRouter, runtimeDialer, startTarget } from "../../tests/helpers/fake_dialer.ts";
import { installLogCapture, removeLogCapture } from "../../tests/helpers/log_capture.ts";
import { createMemoryRuntime } from "../../tests/helpers/memory_runtime.ts";
import { testPolicy, withServer } from "../../tests/helpers/server_script.ts";
import { SOCKS5_GREETING, socks5Connect } from "../../tests/helpers/socks_bytes.ts";
import type { Admitter, ClientInfo } from "./admit.ts";
import type { AuthorizeQuestion } from "./authorize.ts";

const PEER = { host: "192.0.2.7", port: 40000, family: 4 as const };
const REAL_CLIENT: NetAddress = { host: "198.51.100.7", port: 5555, family: 4 };

before(installLogCapture);
after(removeLogCapture);

/** An admitter that refuses everyone with `reason`, recording whom it saw. */
function refuse(reason: string, seen: ClientInfo[] = []): Admitter {
  return {
    admit(client) {
      seen.push(client);
      return { admitted: false, outcome: "denied", reason };
    },
  };
}

/** An admitter that says the client is `address` (what a trusted PROXY header does). */
function rewrite(address: NetAddress): Admitter {
  return { admit: (client) => ({ admitted: true, client: { ...client, address } }) };
}

/** A PROXY-like admitter: reads `PROXY host port\r\n` through the handshake, then admits that address. */
const PROXY_LINE: Admitter = {
  async admit(client, handshake) {
    const line = await handshake.read((bytes): Decoded<string> => {
      const end = bytes.indexOf(0x0a);
      return end < 0
        ? needBytes(bytes.length + 1)
        : { ok: true, value: new TextDecoder().decode(bytes.subarray(0, end + 1)), size: end + 1 };
    });
    const [, host, port] = line.trim().split(" ");
    return { admitted: true, client: { ...client, address: { host: host ?? "", port: Number(port), family: 4 } } };
  },
};

describe("admitters", () => {
  for (const where of ["policy", "scope"] as const) {
    test(`a ${where} admitter that refuses: closed before any SOCKS byte, "denied" logged and recorded`, async () => {
      const seen: ClientInfo[] = [];
      const admitter = refuse("hosts.deny:3", seen);
      const router = fixedRouter({ dial: () => Promise.reject(new Error("not dialled")) });
      const options = where === "policy"
        ? { policy: testPolicy(router, { admitters: [admitter] }) }
        : { router, admitters: [admitter] };
      await withServer(options, async (h) => {
        const client = h.client(PEER);
        client.send(SOCKS5_GREETING);
        await client.waitForClose(200);
        assert.equal(client.receivedLength, 0);
        const [record] = await h.waitForRecords(1);
        assert.equal(record?.outcome, "denied");
        assert.equal(record?.version, "");
        assert.deepEqual(record?.client, PEER);
        assert.deepEqual(h.log.entries().map((line) => [line.level, line.text]), [
          ["warning", "192.0.2.7:40000 denied: hosts.deny:3"],
        ]);
        assert.deepEqual(seen, [{ address: PEER, local: { host: "127.0.0.1", port: 1080, family: 4 } }]);
        assert.equal(router.requests.length, 0);
      });
    });
  }

  test("an admitter that rewrites the client address: router, authorizer, label, log and record see the new one", async () => {
    const runtime = createMemoryRuntime();
    const target = await startTarget(runtime, "203.0.113.10", 80);
    const router = fixedRouter(runtimeDialer(runtime));
    const labelled: NetAddress[] = [];
    const questions: AuthorizeQuestion[] = [];
    const policy = testPolicy(router, {
      authorizer: {
        authorize(question) {
          questions.push(question);
          return { allowed: true };
        },
      },
    });
    const labelClient = (address: NetAddress) => {
      labelled.push(address);
      return `${address.host}:${address.port}`;
    };
    await withServer({ runtime, policy, admitters: [rewrite(REAL_CLIENT)], labelClient }, async (h) => {
      const client = h.client(PEER);
      client.send([...SOCKS5_GREETING, ...socks5Connect("203.0.113.10", 80)]);
      assert.equal((await client.read(12))[1], 0);
      client.close();
      await (await target.peer()).waitForClose();
      const [record] = await h.waitForRecords(1);
      assert.deepEqual(record?.client, REAL_CLIENT);
      assert.deepEqual(router.requests[0]?.client, REAL_CLIENT);
      assert.deepEqual(questions[0]?.client.address, REAL_CLIENT);
      assert.deepEqual(questions[0]?.client.local, { host: "127.0.0.1", port: 1080, family: 4 });
      assert.deepEqual(labelled, [REAL_CLIENT]);
      assert.ok(h.log.lines().every((line) => line.startsWith("198.51.100.7:5555 ")), h.log.lines().join("\n"));
    });
  });

  test("an admitter may read a header through the handshake; SOCKS pipelined behind it still works", async () => {
    const runtime = createMemoryRuntime();
    const target = await startTarget(runtime, "203.0.113.10", 80);
    const router = fixedRouter(runtimeDialer(runtime));
    await withServer({ runtime, router, admitters: [PROXY_LINE] }, async (h) => {
      const client = h.client(PEER);
      client.send([
        ...new TextEncoder().encode("PROXY 198.51.100.7 5555\r\n"),
        ...SOCKS5_GREETING,
        ...socks5Connect("203.0.113.10", 80),
      ]);
      assert.equal((await client.read(12))[1], 0);
      client.close();
      await (await target.peer()).waitForClose();
      await h.waitForRecords(1);
      assert.deepEqual(h.records[0]?.client, REAL_CLIENT);
      assert.equal(h.log.lines()[0], "198.51.100.7:5555 5-CON 203.0.113.10:80(ipv4) - direct");
    });
  });

  test("scope admitters run before policy admitters; the first refusal stops the rest", async () => {
    const seen: ClientInfo[] = [];
    let laterCalled = false;
    const later: Admitter = {
      admit(client) {
        laterCalled = true;
        return { admitted: true, client };
      },
    };
    const policy = testPolicy(fixedRouter({ dial: () => Promise.reject(new Error("no")) }), {
      admitters: [refuse("hosts.deny:1", seen), later],
    });
    await withServer({ policy, admitters: [rewrite(REAL_CLIENT)] }, async (h) => {
      const client = h.client(PEER);
      await client.waitForClose(200);
      await h.waitForRecords(1);
      assert.deepEqual(seen.map((client) => client.address), [REAL_CLIENT]);
      assert.equal(laterCalled, false);
    });
  });

  // A trusted PROXY header (scope admitter) names the real client; when a
  // later admitter (tcp_wrappers) refuses it, the log and the record should
  // name that real client, not the proxy in front of it.
  test("a refusal after a rewrite is logged and recorded under the rewritten address", async () => {
    const policy = testPolicy(fixedRouter({ dial: () => Promise.reject(new Error("no")) }), {
      admitters: [refuse("hosts.deny:1")],
    });
    await withServer({ policy, admitters: [rewrite(REAL_CLIENT)] }, async (h) => {
      const client = h.client(PEER);
      await client.waitForClose(200);
      const [record] = await h.waitForRecords(1);
      assert.deepEqual(h.log.lines(), ["198.51.100.7:5555 denied: hosts.deny:1"]);
      assert.deepEqual(record?.client, REAL_CLIENT);
    });
  });
});

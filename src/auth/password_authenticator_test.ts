import assert from "node:assert/strict";
import { DeadlineQueue } from "../io/deadline_queue.ts";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { ProtocolError } from "../protocol/decoded.ts";
import { encodeUserPassRequest } from "../protocol/socks5_auth.ts";
import type { ClientInfo } from "../server/admit.ts";
import { Handshake } from "../server/handshake.ts";
import type { Identity } from "../server/negotiate.ts";
import { Refusal } from "../server/refusal.ts";
import { type NetAddress, NetError } from "../runtime/types.ts";
import { fixedRouter, runtimeDialer, startTarget } from "../../tests/helpers/fake_dialer.ts";
import { installLogCapture, removeLogCapture } from "../../tests/helpers/log_capture.ts";
import { createConnectionPair } from "../../tests/helpers/memory_connection.ts";
import { createMemoryRuntime } from "../../tests/helpers/memory_runtime.ts";
import { ScriptPeer } from "../../tests/helpers/script_peer.ts";
import { testPolicy, withServer } from "../../tests/helpers/server_script.ts";
import { socks5Connect, socks5Reply } from "../../tests/helpers/socks_bytes.ts";
import { createPasswordAuthenticator, PASSWORD_AUTH_TAG, quoteUser } from "./password_authenticator.ts";
import { LoginThrottle } from "./throttle.ts";
import type { PasswordVerifier, VerifyResult } from "./verifier.ts";

before(installLogCapture);
after(removeLogCapture);

/** alice / wonderland; records every call. */
class FakeVerifier implements PasswordVerifier {
  readonly calls: Array<[string, string]> = [];
  override: VerifyResult | null = null;
  verify(user: string, password: string): Promise<VerifyResult> {
    this.calls.push([user, password]);
    if (this.override !== null) return Promise.resolve(this.override);
    if (user !== "alice") return Promise.resolve({ ok: false, reason: "unknown_user" });
    if (password !== "wonderland") return Promise.resolve({ ok: false, reason: "wrong_password" });
    return Promise.resolve({ ok: true, user });
  }
}

const CLIENT: NetAddress = { host: "192.0.2.10", port: 40000, family: 4 };

function setup(from: NetAddress = CLIENT, timeoutMs = 2000) {
  const [clientEnd, serverEnd] = createConnectionPair(from);
  const shutdown = new AbortController();
  const handshake = new Handshake(serverEnd, new DeadlineQueue(timeoutMs), shutdown.signal);
  const client = new ScriptPeer(clientEnd);
  const info: ClientInfo = { address: from, local: serverEnd.local };
  const done = () => {
    handshake.finish();
    serverEnd.close();
  };
  return { client, handshake, info, shutdown, done };
}

/** Runs the authenticator against `bytes` (sent in one piece, or one byte at a time). */
async function attempt(
  authenticator: ReturnType<typeof createPasswordAuthenticator>,
  bytes: Uint8Array | number[],
  options: { from?: NetAddress; oneByteAtATime?: boolean } = {},
): Promise<{ identity?: Identity; error?: unknown; written: number[] }> {
  const { client, handshake, info, done } = setup(options.from);
  const result = authenticator.authenticate(handshake, info);
  const settled: Promise<{ identity?: Identity; error?: unknown }> = Promise.resolve(result).then(
    (identity) => ({ identity }),
    (error: unknown) => ({ error }),
  );
  if (options.oneByteAtATime) {
    for (const byte of bytes) {
      client.send([byte]);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  } else {
    client.send(Uint8Array.from(bytes));
  }
  // A refused client gets its reply and FIN; it closes then, as a real client would.
  await Promise.race([settled, client.readToEnd().then(() => client.close(), () => {})]);
  const outcome = await settled;
  await new Promise((resolve) => setTimeout(resolve, 5));
  const written = [...client.received()];
  done();
  return { ...outcome, written };
}

function refusalOf(outcome: { error?: unknown }): Refusal {
  assert.ok(outcome.error instanceof Refusal, `expected a Refusal, got ${outcome.error}`);
  return outcome.error;
}

describe("createPasswordAuthenticator()", () => {
  test("is method 0x02", () => {
    assert.equal(createPasswordAuthenticator({ verifier: new FakeVerifier() }).method, 2);
  });

  test("RFC 1929 success: replies 01 00 and the identity's user is the verified name", async () => {
    const verifier = new FakeVerifier();
    const authenticator = createPasswordAuthenticator({ verifier, failureDelayMs: 0 });
    const outcome = await attempt(authenticator, encodeUserPassRequest("alice", "wonderland"));
    assert.deepEqual(outcome, { identity: { user: "alice", method: "password" }, written: [1, 0] });
    assert.deepEqual(verifier.calls, [["alice", "wonderland"]]);
  });

  test("decodes a request fed one byte at a time", async () => {
    const authenticator = createPasswordAuthenticator({ verifier: new FakeVerifier(), failureDelayMs: 0 });
    const outcome = await attempt(authenticator, encodeUserPassRequest("alice", "wonderland"), {
      oneByteAtATime: true,
    });
    assert.deepEqual(outcome.identity, { user: "alice", method: "password" });
    assert.deepEqual(outcome.written, [1, 0]);
  });

  test("failure: a Refusal with reply 01 01, the user and the reason, never the password", async () => {
    const authenticator = createPasswordAuthenticator({ verifier: new FakeVerifier(), failureDelayMs: 0 });
    const wrong = refusalOf(await attempt(authenticator, encodeUserPassRequest("alice", "s3cr3t-guess")));
    assert.equal(wrong.tag, PASSWORD_AUTH_TAG);
    assert.equal(wrong.outcome, "auth_failed");
    assert.equal(wrong.message, "denied for 'alice': wrong password");
    assert.deepEqual([...(wrong.reply ?? [])], [1, 1]);
    const unknown = refusalOf(await attempt(authenticator, encodeUserPassRequest("bob", "s3cr3t-guess")));
    assert.equal(unknown.message, "denied for 'bob': unknown user");
    for (const refusal of [wrong, unknown]) assert.ok(!refusal.message.includes("s3cr3t"));
  });

  test("the verifier's detail and reason reach the message; busy and unavailable have their own outcome", async () => {
    const verifier = new FakeVerifier();
    const authenticator = createPasswordAuthenticator({ verifier, failureDelayMs: 0 });
    verifier.override = { ok: false, reason: "expired", detail: "the account expired on 1970-01-01" };
    const expired = refusalOf(await attempt(authenticator, encodeUserPassRequest("alice", "wonderland")));
    assert.equal(expired.message, "denied for 'alice': account expired (the account expired on 1970-01-01)");
    assert.equal(expired.outcome, "auth_failed");
    verifier.override = { ok: false, reason: "busy" };
    const busy = refusalOf(await attempt(authenticator, encodeUserPassRequest("alice", "wonderland")));
    assert.equal(busy.outcome, "auth_unavailable");
    assert.equal(busy.message, "denied for 'alice': too many logins being checked");
  });

  const MALFORMED: Array<[string, number[]]> = [
    ["VER 5 (a second greeting)", [5, 1, 0]],
    ["VER 0", [0, 1, 0x61, 1, 0x62]],
    ["ULEN 0", [1, 0, 1, 0x62]],
    ["PLEN 0", [1, 1, 0x61, 0]],
    ["a user name that is not UTF-8", [1, 1, 0xff, 1, 0x62]],
  ];
  for (const [name, bytes] of MALFORMED) {
    test(`malformed request (${name}): reply 01 01, close, no verification`, async () => {
      const verifier = new FakeVerifier();
      const authenticator = createPasswordAuthenticator({ verifier, failureDelayMs: 0 });
      const outcome = await attempt(authenticator, bytes);
      assert.ok(outcome.error instanceof ProtocolError, `got ${outcome.error}`);
      assert.deepEqual(outcome.written, [1, 1]);
      assert.deepEqual(verifier.calls, []);
    });
  }

  test("a truncated request then EOF fails without a reply or a verification", async () => {
    const verifier = new FakeVerifier();
    const authenticator = createPasswordAuthenticator({ verifier, failureDelayMs: 0 });
    const { client, handshake, info, done } = setup();
    const result = Promise.resolve(authenticator.authenticate(handshake, info));
    client.send([1, 5, 0x61, 0x6c]);
    client.end();
    await assert.rejects(result, /connection ended after 4 of 8 bytes/);
    assert.deepEqual(verifier.calls, []);
    assert.deepEqual([...client.received()], []);
    done();
  });

  test("a client that stops sending is cut by the handshake timeout, not left hanging", async () => {
    const authenticator = createPasswordAuthenticator({ verifier: new FakeVerifier(), failureDelayMs: 0 });
    const { client, handshake, info, done } = setup(CLIENT, 50);
    client.send([1, 5, 0x61]);
    await assert.rejects(Promise.resolve(authenticator.authenticate(handshake, info)), /Handshake not completed/);
    done();
  });

  test("failures are answered after failureDelayMs, cut short when the server shuts down", async () => {
    const authenticator = createPasswordAuthenticator({ verifier: new FakeVerifier(), failureDelayMs: 150 });
    let started = Date.now();
    refusalOf(await attempt(authenticator, encodeUserPassRequest("alice", "x")));
    assert.ok(Date.now() - started >= 140, `answered after ${Date.now() - started} ms`);
    const { client, handshake, info, shutdown, done } = setup();
    const result = Promise.resolve(authenticator.authenticate(handshake, info));
    client.send(encodeUserPassRequest("alice", "x"));
    await new Promise((resolve) => setTimeout(resolve, 20));
    started = Date.now();
    shutdown.abort();
    await assert.rejects(result, Refusal);
    assert.ok(Date.now() - started < 100);
    done();
  });

  test("after maxFailures from one address its logins are refused unchecked; other clients go on", async () => {
    const verifier = new FakeVerifier();
    const throttle = new LoginThrottle({ maxFailures: 3, windowMs: 60_000, blockMs: 60_000 });
    const authenticator = createPasswordAuthenticator({ verifier, throttle, failureDelayMs: 0 });
    for (const guess of ["a", "b", "c"]) {
      assert.equal(
        refusalOf(await attempt(authenticator, encodeUserPassRequest("alice", guess))).outcome,
        "auth_failed",
      );
    }
    const blocked = refusalOf(await attempt(authenticator, encodeUserPassRequest("alice", "wonderland")));
    assert.equal(blocked.outcome, "auth_throttled");
    assert.equal(blocked.message, "denied for 'alice': too many failed logins from 192.0.2.10, refused for 60 s");
    assert.deepEqual([...(blocked.reply ?? [])], [1, 1]);
    assert.equal(verifier.calls.length, 3, "the blocked attempt was not verified");
    const other = await attempt(authenticator, encodeUserPassRequest("alice", "wonderland"), {
      from: { host: "192.0.2.11", port: 40001, family: 4 },
    });
    assert.deepEqual(other.identity, { user: "alice", method: "password" });
  });

  test("busy and unavailable answers do not count against the client", async () => {
    const verifier = new FakeVerifier();
    const throttle = new LoginThrottle({ maxFailures: 2 });
    const authenticator = createPasswordAuthenticator({ verifier, throttle, failureDelayMs: 0 });
    verifier.override = { ok: false, reason: "busy" };
    for (let i = 0; i < 4; i++) await attempt(authenticator, encodeUserPassRequest("alice", "wonderland"));
    verifier.override = { ok: false, reason: "unavailable" };
    await attempt(authenticator, encodeUserPassRequest("alice", "wonderland"));
    verifier.override = null;
    assert.deepEqual((await attempt(authenticator, encodeUserPassRequest("alice", "wonderland"))).identity, {
      user: "alice",
      method: "password",
    });
  });

  test("a verifier that throws releases the throttle ticket and the error propagates", async () => {
    const throttle = new LoginThrottle({ maxFailures: 1 });
    const verifier: PasswordVerifier = { verify: () => Promise.reject(new Error("bug")) };
    const authenticator = createPasswordAuthenticator({ verifier, throttle, failureDelayMs: 0 });
    const outcome = await attempt(authenticator, encodeUserPassRequest("alice", "x"));
    assert.match(String(outcome.error), /bug/);
    assert.equal(throttle.begin(CLIENT.host).allowed, true);
  });
});

describe("any bytes from the client", () => {
  test("end in an identity, a Refusal, a ProtocolError or a NetError (empty input): never a crash or a hang", async () => {
    const verifier = new FakeVerifier();
    const authenticator = createPasswordAuthenticator({ verifier, throttle: null, failureDelayMs: 0 });
    const request = fc.oneof(
      fc.uint8Array({ maxLength: 24 }),
      fc.tuple(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ minLength: 1, maxLength: 8 })).map(([u, p]) =>
        encodeUserPassRequest(u, p)
      ),
    );
    await fc.assert(
      fc.asyncProperty(request, fc.integer({ min: 1, max: 7 }), async (bytes, chunk) => {
        const { client, handshake, info, done } = setup(CLIENT, 1000);
        const result = Promise.resolve(authenticator.authenticate(handshake, info)).then(
          (identity) => identity,
          (error: unknown) => error,
        );
        for (let at = 0; at < bytes.length; at += chunk) client.send(bytes.subarray(at, at + chunk));
        client.end();
        const outcome = await result;
        done();
        const fine = outcome instanceof Refusal || outcome instanceof ProtocolError || outcome instanceof NetError ||
          (typeof outcome === "object" && outcome !== null && "method" in outcome);
        assert.ok(fine, `unexpected outcome ${outcome}`);
      }),
      { numRuns: 150 },
    );
  });
});

describe("quoteUser()", () => {
  test("quotes and escapes what could forge or garble a log line", () => {
    assert.equal(quoteUser("alice"), "'alice'");
    assert.equal(quoteUser("a'b\\c"), "'a\\'b\\\\c'");
    assert.equal(quoteUser("x\n127.0.0.1 5-CON ok"), "'x\\x0a127.0.0.1 5-CON ok'");
    assert.equal(quoteUser("j\u00f6rg\u{1f511}"), "'j\\u00f6rg\\u{1f511}'");
  });
});

describe("password authentication in a session", () => {
  function userPass(user: string, password: string): number[] {
    return [...encodeUserPassRequest(user, password)];
  }

  test("a wrong password: 05 02, then 01 01 and close; one log line with client, user and reason", async () => {
    const authenticator = createPasswordAuthenticator({ verifier: new FakeVerifier(), failureDelayMs: 0 });
    const policy = testPolicy(fixedRouter(runtimeDialer(createMemoryRuntime())), {
      negotiation: { socks5: [authenticator], socks4: false },
    });
    await withServer({ policy }, async (h) => {
      const client = h.client({ host: "192.0.2.7", port: 40000, family: 4 });
      client.send([5, 1, 2]);
      assert.deepEqual([...(await client.read(2))], [5, 2]);
      client.send(userPass("alice", "hunter2"));
      assert.deepEqual([...(await client.readToEnd())], [1, 1]);
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.outcome, "auth_failed");
      assert.deepEqual(h.log.lines(), ["192.0.2.7:40000 5-U/P_AUTH: denied for 'alice': wrong password"]);
      assert.ok(!JSON.stringify(h.log.entries()).includes("hunter2"));
    });
  });

  test("the right password: 01 00, then the request is served as the verified user", async () => {
    const runtime = createMemoryRuntime({ sourceHost4: "10.0.0.5" });
    const target = await startTarget(runtime, "203.0.113.10", 80);
    const authenticator = createPasswordAuthenticator({ verifier: new FakeVerifier(), failureDelayMs: 0 });
    const policy = testPolicy(fixedRouter(runtimeDialer(runtime)), {
      negotiation: { socks5: [authenticator], socks4: false },
    });
    await withServer({ runtime, policy }, async (h) => {
      const client = h.client({ host: "192.0.2.7", port: 40000, family: 4 });
      client.send([5, 1, 2]);
      assert.deepEqual([...(await client.read(2))], [5, 2]);
      for (const byte of userPass("alice", "wonderland")) client.send([byte]);
      assert.deepEqual([...(await client.read(2))], [1, 0]);
      client.send(socks5Connect("203.0.113.10", 80));
      assert.deepEqual([...(await client.read(10))], socks5Reply(0, "10.0.0.5", runtime.outbound[0]?.local.port));
      client.close();
      await (await target.peer()).waitForClose();
      const [record] = await h.waitForRecords(1);
      assert.equal(record?.user, "alice");
    });
  });
});

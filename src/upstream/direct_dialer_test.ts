import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ipFamily } from "../net/address.ts";
import type { Target } from "../protocol/target.ts";
import type { Resolver } from "../runtime/resolver.ts";
import {
  type Cancellation,
  type Connection,
  type ConnectOptions,
  NetError,
  type NetRuntime,
} from "../runtime/types.ts";
import { nodeRuntime } from "../runtime/node.ts";
import { collect, text, utf8 } from "../../tests/helpers/connection_io.ts";
import { closedPort, startEchoServer } from "../../tests/helpers/fake_hops.ts";
import { createConnectionPair } from "../../tests/helpers/memory_connection.ts";
import { createDirectDialer, interleaveFamilies } from "./direct_dialer.ts";

type Behaviour = "ok" | "refuse" | "unreachable" | "hang" | "late";

interface Call {
  readonly host: string;
  readonly localHost: string | undefined;
  readonly timeoutMs: number | undefined;
  readonly signal: Cancellation | undefined;
  aborted: boolean;
  connection?: Connection;
}

/** A runtime whose connects behave per address; "late" succeeds after the test calls `release()`. */
function fakeRuntime(behaviour: Record<string, Behaviour>, canBindSource = true, name: "deno" | "node" = "node") {
  const calls: Call[] = [];
  const late: Array<() => void> = [];
  const runtime: NetRuntime = {
    name,
    canBindSource,
    canReusePort: false,
    listen: () => Promise.reject(new Error("not used")),
    listenForPeer: () => Promise.reject(new Error("not used")),
    bindDatagram: () => Promise.reject(new Error("not used")),
    connect(options: ConnectOptions): Promise<Connection> {
      const call: Call = {
        host: options.host,
        localHost: options.localHost,
        timeoutMs: options.timeoutMs,
        signal: options.signal,
        aborted: false,
      };
      calls.push(call);
      const family = ipFamily(options.host) === 6 ? 6 : 4;
      const open = () => {
        const [connection] = createConnectionPair(
          { host: family === 6 ? "2001:db8::ff" : "192.0.2.255", port: 40000 + calls.length, family },
          { host: options.host, port: options.port, family },
        );
        call.connection = connection;
        return connection;
      };
      switch (behaviour[options.host] ?? "refuse") {
        case "ok":
          return Promise.resolve(open());
        case "refuse":
          return Promise.reject(new NetError("refused", `connect ECONNREFUSED ${options.host}`));
        case "unreachable":
          return Promise.reject(new NetError("host_unreachable", `connect EHOSTUNREACH ${options.host}`));
        case "late":
          return new Promise((resolve) => late.push(() => resolve(open())));
        case "hang":
          return new Promise((_, reject) => {
            options.signal?.addEventListener("abort", () => {
              call.aborted = true;
              reject(new NetError("aborted", "aborted"));
            }, { once: true });
          });
      }
    },
  };
  return { runtime, calls, releaseLate: () => late.splice(0).forEach((release) => release()) };
}

function fixedResolver(addresses: string[]): Resolver & { names: string[] } {
  const names: string[] = [];
  return {
    names,
    resolve(name) {
      names.push(name);
      return Promise.resolve([...addresses]);
    },
  };
}

const failingResolver: Resolver = {
  resolve: (name) => Promise.reject(new NetError("not_found", `Cannot resolve ${name}: no such host`)),
};

const context = () => ({ signal: new AbortController().signal });
const domain = (host: string, port = 80): Target => ({ kind: "domain", host, port });

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.ok(condition(), "condition not met within 1 s");
}

describe("interleaveFamilies()", () => {
  test("alternates families starting with the first address's family", () => {
    assert.deepEqual(
      interleaveFamilies(["2001:db8::1", "2001:db8::2", "192.0.2.1", "192.0.2.2", "192.0.2.3"]),
      ["2001:db8::1", "192.0.2.1", "2001:db8::2", "192.0.2.2", "192.0.2.3"],
    );
    assert.deepEqual(interleaveFamilies(["192.0.2.1", "2001:db8::1"]), ["192.0.2.1", "2001:db8::1"]);
    assert.deepEqual(interleaveFamilies([]), []);
  });
});

describe("createDirectDialer()", () => {
  test("connects to an IP target without resolving and reports the local address as bound", async () => {
    const { runtime, calls } = fakeRuntime({ "198.51.100.7": "ok" });
    const resolver = fixedResolver([]);
    const dialer = createDirectDialer({ runtime, resolver });
    const result = await dialer.dial({ kind: "ipv4", host: "198.51.100.7", port: 22 }, context());
    assert.deepEqual(resolver.names, []);
    assert.deepEqual(calls.map((call) => call.host), ["198.51.100.7"]);
    assert.deepEqual(result.bound, { kind: "ipv4", host: "192.0.2.255", port: 40001 });
    assert.equal(result.rest.length, 0);
    result.connection.close();
  });

  test("an IP target: one attempt, which the runtime times out, cancelled by the caller's own signal", async () => {
    const { runtime, calls } = fakeRuntime({ "198.51.100.7": "ok" });
    const dialer = createDirectDialer({ runtime, resolver: fixedResolver([]), connectTimeoutMs: 1234 });
    const caller = context();
    const result = await dialer.dial({ kind: "ipv4", host: "198.51.100.7", port: 22 }, caller);
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.timeoutMs, 1234);
    assert.equal(calls[0]?.signal, caller.signal);
    result.connection.close();
  });

  test("a name: each attempt carries the dialer's signal, which its own deadline aborts", async () => {
    const { runtime, calls } = fakeRuntime({ "192.0.2.1": "ok" });
    const dialer = createDirectDialer({ runtime, resolver: fixedResolver(["192.0.2.1"]), connectTimeoutMs: 1234 });
    const caller = context();
    const result = await dialer.dial(domain("one.test"), caller);
    assert.equal(calls[0]?.timeoutMs, undefined);
    assert.notEqual(calls[0]?.signal, caller.signal);
    result.connection.close();
  });

  test("tries the next address at once when one is refused", async () => {
    const { runtime, calls } = fakeRuntime({ "2001:db8::1": "refuse", "192.0.2.1": "ok" });
    const dialer = createDirectDialer({ runtime, resolver: fixedResolver(["2001:db8::1", "192.0.2.1"]) });
    const result = await dialer.dial(domain("dual.test"), context());
    assert.deepEqual(calls.map((call) => call.host), ["2001:db8::1", "192.0.2.1"]);
    assert.equal(result.connection.remote.host, "192.0.2.1");
    result.connection.close();
  });

  test("starts the next attempt while the first hangs and aborts the loser", async () => {
    const { runtime, calls } = fakeRuntime({ "2001:db8::1": "hang", "192.0.2.1": "ok" });
    const dialer = createDirectDialer({
      runtime,
      resolver: fixedResolver(["2001:db8::1", "192.0.2.1"]),
      attemptDelayMs: 5,
    });
    const result = await dialer.dial(domain("dual.test"), context());
    assert.equal(result.connection.remote.host, "192.0.2.1");
    assert.equal(calls[0]?.aborted, true);
    result.connection.close();
  });

  test("closes a connection that succeeds after another won", async () => {
    const { runtime, calls, releaseLate } = fakeRuntime({ "2001:db8::1": "late", "192.0.2.1": "ok" });
    const dialer = createDirectDialer({
      runtime,
      resolver: fixedResolver(["2001:db8::1", "192.0.2.1"]),
      attemptDelayMs: 1,
    });
    const result = await dialer.dial(domain("dual.test"), context());
    assert.equal(result.connection.remote.host, "192.0.2.1");
    releaseLate();
    await waitFor(() => calls[0]?.connection?.closed === true);
    assert.equal(result.connection.closed, false);
    result.connection.close();
  });

  test("tries every address, families interleaved, and reports a refusal over the last error", async () => {
    const { runtime, calls } = fakeRuntime({
      "2001:db8::1": "unreachable",
      "2001:db8::2": "unreachable",
      "192.0.2.1": "refuse",
      "192.0.2.2": "unreachable",
    });
    const dialer = createDirectDialer({
      runtime,
      resolver: fixedResolver(["2001:db8::1", "2001:db8::2", "192.0.2.1", "192.0.2.2"]),
    });
    await assert.rejects(dialer.dial(domain("many.test", 443), context()), (error: unknown) => {
      assert.ok(error instanceof NetError);
      assert.equal(error.code, "refused");
      assert.equal(
        error.message,
        "Cannot connect to many.test:443 (4 addresses tried): connect ECONNREFUSED 192.0.2.1",
      );
      return true;
    });
    assert.deepEqual(calls.map((call) => call.host), ["2001:db8::1", "192.0.2.1", "2001:db8::2", "192.0.2.2"]);
  });

  test("reports the last error when nothing refused", async () => {
    const { runtime } = fakeRuntime({ "192.0.2.1": "unreachable" });
    const dialer = createDirectDialer({ runtime, resolver: fixedResolver(["192.0.2.1"]) });
    await assert.rejects(
      dialer.dial(domain("far.test"), context()),
      (error: unknown) => error instanceof NetError && error.code === "host_unreachable",
    );
  });

  test("passes a resolver failure on", async () => {
    const { runtime, calls } = fakeRuntime({});
    const dialer = createDirectDialer({ runtime, resolver: failingResolver });
    await assert.rejects(
      dialer.dial(domain("nowhere.test"), context()),
      (error: unknown) =>
        error instanceof NetError && error.code === "not_found" && /nowhere\.test/.test(error.message),
    );
    assert.equal(calls.length, 0);
  });

  test("throws NetError timeout when no attempt connects in time, aborting them", async () => {
    const { runtime, calls } = fakeRuntime({ "192.0.2.1": "hang", "2001:db8::1": "hang" });
    const dialer = createDirectDialer({
      runtime,
      resolver: fixedResolver(["192.0.2.1", "2001:db8::1"]),
      connectTimeoutMs: 20,
      attemptDelayMs: 1,
    });
    await assert.rejects(dialer.dial(domain("slow.test"), context()), (error: unknown) => {
      assert.ok(error instanceof NetError);
      assert.equal(error.code, "timeout");
      assert.match(error.message, /slow\.test:80/);
      return true;
    });
    assert.equal(calls.length, 2);
    assert.ok(calls.every((call) => call.aborted));
  });

  test("out of time while the name is still resolving: not_found, 'no answer', no attempt made", async () => {
    const { runtime, calls } = fakeRuntime({});
    let lookups = 0;
    const silent: Resolver = {
      resolve: (_name, signal) => {
        lookups++;
        return new Promise((_resolve, reject) => signal?.addEventListener("abort", () => reject(signal.reason)));
      },
    };
    const dialer = createDirectDialer({ runtime, resolver: silent, connectTimeoutMs: 20 });
    await assert.rejects(dialer.dial(domain("slow.test"), context()), (error: unknown) => {
      assert.ok(error instanceof NetError);
      assert.equal(error.code, "not_found");
      assert.equal(error.message, "Cannot resolve slow.test: no answer within 20 ms");
      return true;
    });
    assert.equal(lookups, 1);
    assert.equal(calls.length, 0);
  });

  test("throws NetError aborted when the caller aborts", async () => {
    const { runtime, calls } = fakeRuntime({ "192.0.2.1": "hang" });
    const dialer = createDirectDialer({ runtime, resolver: fixedResolver([]) });
    const controller = new AbortController();
    const dial = dialer.dial({ kind: "ipv4", host: "192.0.2.1", port: 80 }, { signal: controller.signal });
    controller.abort();
    await assert.rejects(dial, (error: unknown) => error instanceof NetError && error.code === "aborted");
    assert.equal(calls[0]?.aborted, true);
  });

  test("binds the local address only for destinations of its family", async () => {
    const { runtime, calls } = fakeRuntime({ "2001:db8::1": "refuse", "192.0.2.1": "ok" });
    const dialer = createDirectDialer({ runtime, resolver: fixedResolver(["2001:db8::1", "192.0.2.1"]) });
    const result = await dialer.dial(domain("dual.test"), { ...context(), localHost: "192.0.2.200" });
    assert.deepEqual(calls.map((call) => [call.host, call.localHost]), [
      ["2001:db8::1", undefined],
      ["192.0.2.1", "192.0.2.200"],
    ]);
    result.connection.close();
  });

  test("uses the source runtime for bound dials when the main runtime cannot bind", async () => {
    const main = fakeRuntime({ "2001:db8::1": "ok" }, false, "deno");
    const source = fakeRuntime({ "192.0.2.1": "ok" });
    const dialer = createDirectDialer({
      runtime: main.runtime,
      sourceRuntime: source.runtime,
      resolver: fixedResolver([]),
    });
    const bound = await dialer.dial({ kind: "ipv4", host: "192.0.2.1", port: 80 }, {
      ...context(),
      localHost: "192.0.2.200",
    });
    const unbound = await dialer.dial({ kind: "ipv6", host: "2001:db8::1", port: 80 }, {
      ...context(),
      localHost: "192.0.2.200",
    });
    assert.deepEqual(source.calls.map((call) => [call.host, call.localHost]), [["192.0.2.1", "192.0.2.200"]]);
    assert.deepEqual(main.calls.map((call) => [call.host, call.localHost]), [["2001:db8::1", undefined]]);
    bound.connection.close();
    unbound.connection.close();
  });

  test("fails clearly when a bound dial has no runtime that can bind", async () => {
    const { runtime, calls } = fakeRuntime({ "192.0.2.1": "ok" }, false, "deno");
    const dialer = createDirectDialer({ runtime, resolver: fixedResolver([]) });
    await assert.rejects(
      dialer.dial({ kind: "ipv4", host: "192.0.2.1", port: 80 }, { ...context(), localHost: "192.0.2.200" }),
      /Cannot bind the outbound socket to 192\.0\.2\.200/,
    );
    assert.equal(calls.length, 0);
  });

  test("over real sockets, a refusing first address falls through to a working one", async () => {
    const echo = await startEchoServer();
    try {
      const dialer = createDirectDialer({ runtime: nodeRuntime, resolver: fixedResolver(["::1", "127.0.0.1"]) });
      const result = await dialer.dial(domain("dual.test", echo.port), context());
      assert.equal(result.connection.remote.host, "127.0.0.1");
      assert.deepEqual(result.bound, {
        kind: "ipv4",
        host: result.connection.local.host,
        port: result.connection.local.port,
      });
      const received = collect(result.connection, result.rest);
      result.connection.write(utf8("ping"));
      assert.equal(text(await received.waitForBytes(4)), "ping");
      result.connection.close();
    } finally {
      await echo.close();
    }
  });

  test("over real sockets, a refused connection is NetError refused naming the target", async () => {
    const port = await closedPort();
    const dialer = createDirectDialer({ runtime: nodeRuntime, resolver: fixedResolver(["127.0.0.1"]) });
    await assert.rejects(dialer.dial(domain("closed.test", port), context()), (error: unknown) => {
      assert.ok(error instanceof NetError);
      assert.equal(error.code, "refused");
      assert.match(error.message, new RegExp(`^Cannot connect to closed\\.test:${port}: 127\\.0\\.0\\.1:${port}: `));
      return true;
    });
  });
});

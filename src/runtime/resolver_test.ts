import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createResolver, type LookupFunction } from "./resolver.ts";
import { NetError } from "./types.ts";

/** A lookup that answers from a table and counts calls per name. */
function tableLookup(table: Record<string, string[]>): LookupFunction & { calls: string[] } {
  const calls: string[] = [];
  const lookup = (name: string) => {
    calls.push(name);
    const addresses = table[name.toLowerCase()];
    if (addresses === undefined) {
      return Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: "ENOTFOUND" }));
    }
    return Promise.resolve(addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 })));
  };
  return Object.assign(lookup, { calls });
}

/** A lookup whose answers the test releases by hand. */
function manualLookup() {
  const pending: Array<{ name: string; resolve: (addresses: string[]) => void }> = [];
  const lookup: LookupFunction = (name) =>
    new Promise((resolve) => {
      pending.push({
        name,
        resolve: (addresses) => resolve(addresses.map((address) => ({ address, family: 4 }))),
      });
    });
  return { lookup, pending };
}

describe("createResolver()", () => {
  test("returns numeric addresses as is without a lookup", async () => {
    const lookup = tableLookup({});
    const resolver = createResolver({ lookup });
    assert.deepEqual(await resolver.resolve("192.0.2.1"), ["192.0.2.1"]);
    assert.deepEqual(await resolver.resolve("::1"), ["::1"]);
    assert.deepEqual(lookup.calls, []);
  });

  test("returns every address in the lookup's order without duplicates", async () => {
    const lookup = tableLookup({ "dual.test": ["2001:db8::1", "192.0.2.1", "2001:db8::1", "192.0.2.2"] });
    const resolver = createResolver({ lookup });
    assert.deepEqual(await resolver.resolve("dual.test"), ["2001:db8::1", "192.0.2.1", "192.0.2.2"]);
  });

  test("coalesces identical lookups in flight", async () => {
    const { lookup, pending } = manualLookup();
    const resolver = createResolver({ lookup });
    const first = resolver.resolve("a.test");
    const second = resolver.resolve("A.TEST");
    assert.equal(pending.length, 1);
    pending[0]?.resolve(["192.0.2.7"]);
    assert.deepEqual(await first, ["192.0.2.7"]);
    assert.deepEqual(await second, ["192.0.2.7"]);
  });

  test("answers from the cache until the TTL passes", async () => {
    let now = 1000;
    const lookup = tableLookup({ "a.test": ["192.0.2.1"] });
    const resolver = createResolver({ lookup, cacheTtlMs: 500, now: () => now });
    await resolver.resolve("a.test");
    now += 499;
    await resolver.resolve("a.test");
    assert.equal(lookup.calls.length, 1);
    now += 1;
    await resolver.resolve("a.test");
    assert.equal(lookup.calls.length, 2);
  });

  test("does not cache when cacheTtlMs is 0", async () => {
    const lookup = tableLookup({ "a.test": ["192.0.2.1"] });
    const resolver = createResolver({ lookup, cacheTtlMs: 0 });
    await resolver.resolve("a.test");
    await resolver.resolve("a.test");
    assert.equal(lookup.calls.length, 2);
  });

  test("evicts the oldest entry beyond maxEntries", async () => {
    const lookup = tableLookup({ "a.test": ["192.0.2.1"], "b.test": ["192.0.2.2"], "c.test": ["192.0.2.3"] });
    const resolver = createResolver({ lookup, maxEntries: 2 });
    await resolver.resolve("a.test");
    await resolver.resolve("b.test");
    await resolver.resolve("c.test");
    await resolver.resolve("c.test");
    await resolver.resolve("b.test");
    assert.deepEqual(lookup.calls, ["a.test", "b.test", "c.test"]);
    await resolver.resolve("a.test");
    assert.deepEqual(lookup.calls, ["a.test", "b.test", "c.test", "a.test"]);
  });

  test("returns a copy callers may change", async () => {
    const resolver = createResolver({ lookup: tableLookup({ "a.test": ["192.0.2.1"] }) });
    const first = await resolver.resolve("a.test");
    first.push("198.51.100.1");
    assert.deepEqual(await resolver.resolve("a.test"), ["192.0.2.1"]);
  });

  test("throws NetError not_found naming the host, and does not cache failures", async () => {
    const lookup = tableLookup({});
    const resolver = createResolver({ lookup });
    await assert.rejects(resolver.resolve("nowhere.test"), (error: unknown) => {
      assert.ok(error instanceof NetError);
      assert.equal(error.code, "not_found");
      assert.match(error.message, /^Cannot resolve nowhere\.test: no such host \(ENOTFOUND\)$/);
      return true;
    });
    await assert.rejects(resolver.resolve("nowhere.test"), NetError);
    assert.equal(lookup.calls.length, 2);
  });

  test("throws NetError not_found when the lookup returns no address", async () => {
    const resolver = createResolver({ lookup: tableLookup({ "empty.test": [] }) });
    await assert.rejects(
      resolver.resolve("empty.test"),
      (error: unknown) => error instanceof NetError && error.code === "not_found",
    );
  });

  test("throws NetError not_found (as EAI_AGAIN would) when the lookup does not answer in time", async () => {
    const { lookup } = manualLookup();
    const resolver = createResolver({ lookup, timeoutMs: 10 });
    await assert.rejects(resolver.resolve("slow.test"), (error: unknown) => {
      assert.ok(error instanceof NetError);
      assert.equal(error.code, "not_found");
      assert.equal(error.message, "Cannot resolve slow.test: no answer within 10 ms");
      return true;
    });
  });

  test("an aborted caller stops waiting while others still get the answer", async () => {
    const { lookup, pending } = manualLookup();
    const resolver = createResolver({ lookup });
    const controller = new AbortController();
    const aborted = resolver.resolve("a.test", controller.signal);
    const other = resolver.resolve("a.test");
    controller.abort();
    await assert.rejects(aborted, (error: unknown) => error instanceof NetError && error.code === "aborted");
    pending[0]?.resolve(["192.0.2.9"]);
    assert.deepEqual(await other, ["192.0.2.9"]);
  });

  test("rejects at once for a signal aborted before the call", async () => {
    const lookup = tableLookup({ "a.test": ["192.0.2.1"] });
    const resolver = createResolver({ lookup });
    await assert.rejects(resolver.resolve("a.test", AbortSignal.abort()), NetError);
    assert.equal(lookup.calls.length, 0);
  });

  test("resolves localhost through the system lookup (/etc/hosts)", async () => {
    const addresses = await createResolver().resolve("localhost");
    assert.ok(
      addresses.includes("127.0.0.1") || addresses.includes("::1"),
      `localhost resolved to ${addresses.join(", ")}`,
    );
  });
});

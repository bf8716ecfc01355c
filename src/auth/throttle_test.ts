import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { LoginThrottle, type ThrottleDecision, throttleKey, type ThrottleTicket } from "./throttle.ts";

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

function ticket(decision: ThrottleDecision): ThrottleTicket {
  assert.equal(decision.allowed, true, "the login was refused");
  return (decision as { ticket: ThrottleTicket }).ticket;
}

function failTimes(throttle: LoginThrottle, host: string, times: number): void {
  for (let i = 0; i < times; i++) ticket(throttle.begin(host)).fail();
}

describe("throttleKey()", () => {
  test("keeps IPv4, unmaps IPv4-mapped IPv6, groups IPv6 by /64", () => {
    assert.equal(throttleKey("192.0.2.7"), "192.0.2.7");
    assert.equal(throttleKey("::ffff:192.0.2.7"), "192.0.2.7");
    assert.equal(throttleKey("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
    assert.equal(throttleKey("2001:db8:1:2::1"), throttleKey("2001:db8:1:2:ffff::9"));
    assert.notEqual(throttleKey("2001:db8:1:2::1"), throttleKey("2001:db8:1:3::1"));
    assert.equal(throttleKey("not-an-address"), "not-an-address");
  });
});

describe("LoginThrottle", () => {
  test("blocks an address after maxFailures failures within the window, for blockMs", () => {
    const time = clock();
    const throttle = new LoginThrottle({ maxFailures: 3, windowMs: 60_000, blockMs: 300_000, now: time.now });
    failTimes(throttle, "192.0.2.1", 3);
    const refused = throttle.begin("192.0.2.1");
    assert.deepEqual(refused, { allowed: false, key: "192.0.2.1", reason: "blocked", retryAfterMs: 300_000 });
    assert.equal(throttle.blocked("192.0.2.1"), true);
    time.advance(299_999);
    assert.equal(throttle.begin("192.0.2.1").allowed, false);
    time.advance(1);
    assert.equal(throttle.blocked("192.0.2.1"), false);
    ticket(throttle.begin("192.0.2.1")).fail();
    assert.equal(throttle.begin("192.0.2.1").allowed, true, "after a block, the count starts again");
  });

  test("other addresses are not affected", () => {
    const throttle = new LoginThrottle({ maxFailures: 2, now: clock().now });
    failTimes(throttle, "192.0.2.1", 2);
    assert.equal(throttle.begin("192.0.2.1").allowed, false);
    assert.equal(throttle.begin("192.0.2.2").allowed, true);
    assert.equal(throttle.begin("2001:db8::1").allowed, true);
  });

  test("all addresses of one IPv6 /64 count together", () => {
    const throttle = new LoginThrottle({ maxFailures: 2, now: clock().now });
    ticket(throttle.begin("2001:db8:0:1::1")).fail();
    ticket(throttle.begin("2001:db8:0:1::2")).fail();
    assert.equal(throttle.begin("2001:db8:0:1::3").allowed, false);
    assert.equal(throttle.begin("2001:db8:0:2::1").allowed, true);
  });

  test("failures older than the window are forgotten", () => {
    const time = clock();
    const throttle = new LoginThrottle({ maxFailures: 3, windowMs: 60_000, now: time.now });
    failTimes(throttle, "192.0.2.1", 2);
    time.advance(60_000);
    failTimes(throttle, "192.0.2.1", 2);
    assert.equal(throttle.begin("192.0.2.1").allowed, true);
  });

  test("a success does not reset the count (one valid account must not unlock guessing others)", () => {
    const throttle = new LoginThrottle({ maxFailures: 3, now: clock().now });
    failTimes(throttle, "192.0.2.1", 2);
    ticket(throttle.begin("192.0.2.1")).succeed();
    ticket(throttle.begin("192.0.2.1")).fail();
    assert.equal(throttle.begin("192.0.2.1").allowed, false);
  });

  test("logins being checked count until they end, so parallel guesses gain nothing", () => {
    const throttle = new LoginThrottle({ maxFailures: 3, now: clock().now });
    const tickets = [
      ticket(throttle.begin("192.0.2.1")),
      ticket(throttle.begin("192.0.2.1")),
      ticket(
        throttle.begin("192.0.2.1"),
      ),
    ];
    const refused = throttle.begin("192.0.2.1");
    assert.equal(refused.allowed, false);
    assert.equal(!refused.allowed && refused.reason, "pending");
    tickets[0]!.succeed();
    assert.equal(throttle.begin("192.0.2.1").allowed, true);
  });

  test("turn() resolves when one of the address's checks ends, so a pending login waits instead of failing", async () => {
    const throttle = new LoginThrottle({ maxFailures: 2, now: clock().now });
    const first = ticket(throttle.begin("192.0.2.1"));
    ticket(throttle.begin("192.0.2.1"));
    assert.equal(throttle.begin("192.0.2.1").allowed, false);
    let woke = false;
    const waiting = throttle.turn("192.0.2.1", new AbortController().signal).then(() => (woke = true));
    await Promise.resolve();
    assert.equal(woke, false, "still waiting while both checks run");
    first.succeed();
    await waiting;
    assert.equal(throttle.begin("192.0.2.1").allowed, true);
    const other = new AbortController();
    const aborted = throttle.turn("192.0.2.1", other.signal);
    other.abort();
    await aborted;
    await throttle.turn("198.51.100.1", new AbortController().signal);
  });

  test("noteRefusal() says to log a blocked address at most once every 10 s", () => {
    const time = clock();
    const throttle = new LoginThrottle({ maxFailures: 1, now: time.now });
    ticket(throttle.begin("192.0.2.1")).fail();
    const key = throttleKey("192.0.2.1");
    assert.equal(throttle.noteRefusal(key), true);
    assert.equal(throttle.noteRefusal(key), false);
    time.advance(10_000);
    assert.equal(throttle.noteRefusal(key), true);
  });

  test("cancel() counts for nothing, and a ticket counts once", () => {
    const throttle = new LoginThrottle({ maxFailures: 2, now: clock().now });
    for (let i = 0; i < 5; i++) ticket(throttle.begin("192.0.2.1")).cancel();
    const once = ticket(throttle.begin("192.0.2.1"));
    once.fail();
    once.fail();
    once.succeed();
    assert.equal(throttle.begin("192.0.2.1").allowed, true);
  });

  test("remembers at most maxEntries addresses, forgetting the one touched longest ago", () => {
    const throttle = new LoginThrottle({ maxFailures: 1, maxEntries: 3, now: clock().now });
    ticket(throttle.begin("192.0.2.1")).fail();
    ticket(throttle.begin("192.0.2.2")).fail();
    ticket(throttle.begin("192.0.2.3")).fail();
    assert.equal(throttle.begin("192.0.2.1").allowed, false); // touched: now the newest
    ticket(throttle.begin("192.0.2.4")).succeed(); // evicts 192.0.2.2
    assert.equal(throttle.size, 3);
    assert.equal(throttle.blocked("192.0.2.1"), true);
    assert.equal(throttle.blocked("192.0.2.2"), false);
    assert.equal(throttle.blocked("192.0.2.3"), true);
    for (let i = 0; i < 1000; i++) throttle.begin(`10.0.${i >> 8}.${i & 255}`);
    assert.equal(throttle.size, 3);
  });

  test("defaults: 5 failures within a minute block for 5 minutes", () => {
    const throttle = new LoginThrottle();
    assert.deepEqual([throttle.maxFailures, throttle.windowMs, throttle.blockMs, throttle.maxEntries], [
      5,
      60_000,
      300_000,
      10_000,
    ]);
  });
});

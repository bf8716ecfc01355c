import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { MAX_QUEUED_LINES, queuedSyslogTransport } from "./syslog_queue.ts";

const encode = (text: string) => new TextEncoder().encode(text);
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** A sender whose sends finish only when the test says so. */
function manualSender() {
  const pending: Array<{ text: string; finish: (error?: Error) => void }> = [];
  let released = 0;
  return {
    pending,
    released: () => released,
    sender: {
      send: (datagram: Uint8Array) =>
        new Promise<void>((resolve, reject) => {
          pending.push({ text: decode(datagram), finish: (error) => (error ? reject(error) : resolve()) });
        }),
      release: () => {
        released++;
      },
    },
  };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("queuedSyslogTransport()", () => {
  test("sends one datagram at a time, in order, and reports each outcome", async () => {
    const manual = manualSender();
    const reports: (string | null)[] = [];
    const transport = queuedSyslogTransport(manual.sender, (error) => reports.push(error));
    transport.send(encode("a"));
    transport.send(encode("b"));
    transport.send(encode("c"));
    assert.deepEqual(manual.pending.map((p) => p.text), ["a"], "only one send at a time");
    manual.pending[0]!.finish();
    await tick();
    assert.deepEqual(manual.pending.map((p) => p.text), ["a", "b"]);
    manual.pending[1]!.finish(Object.assign(new Error("gone"), { code: "ENOENT" }));
    await tick();
    manual.pending[2]!.finish();
    await tick();
    assert.deepEqual(manual.pending.map((p) => p.text), ["a", "b", "c"]);
    assert.deepEqual(reports, [null, "ENOENT", null]);
    await transport.close();
    assert.equal(manual.released(), 1);
  });

  test("drops lines beyond the queue's bound as EAGAIN, without blocking", () => {
    const manual = manualSender();
    const reports: (string | null)[] = [];
    const transport = queuedSyslogTransport(manual.sender, (error) => reports.push(error));
    // One line is being sent; MAX_QUEUED_LINES more wait; the next one is dropped.
    for (let i = 0; i <= MAX_QUEUED_LINES + 1; i++) transport.send(encode(`line ${i}`));
    assert.deepEqual(reports, ["EAGAIN"]);
  });

  test("close() waits for queued lines, then releases; later lines are refused", async () => {
    const manual = manualSender();
    const reports: (string | null)[] = [];
    const transport = queuedSyslogTransport(manual.sender, (error) => reports.push(error));
    transport.send(encode("last words"));
    const closed = transport.close();
    await tick();
    assert.equal(manual.released(), 0, "not released while a line is in flight");
    manual.pending[0]!.finish();
    await closed;
    assert.equal(manual.released(), 1);
    transport.send(encode("too late"));
    assert.deepEqual(reports, [null, "EBADF"]);
  });
});

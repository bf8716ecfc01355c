import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { deferred, within } from "../../tests/runtime/async_helpers.ts";
import type { Connection, NetRuntime } from "./types.ts";

const onDeno = "Deno" in globalThis;

/** Message sizes around the 512-byte and 64 KiB read buffers, so reads switch between them. */
const SIZES = [1, 511, 512, 513, 70_000, 7, 65_536, 300, 131_072, 2, 1000, 65_535, 512, 3, 200, 90_000, 5, 600];

function message(index: number, size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (index * 37 + i * 13 + (i >> 8)) & 0xff;
  return bytes;
}

/** Allocates about 64 MiB that is garbage as soon as it returns. */
function makeGarbage(): number {
  let kept = 0;
  for (let i = 0; i < 64; i++) kept += new Array(128 * 1024).fill(i).length;
  return kept;
}

// Registered only under Deno: the other runtime cannot load this adapter.
if (onDeno) {
  const { denoRuntime }: { denoRuntime: NetRuntime } = await import("./deno.ts");
  const { releaseDenoMemory } = await import("./_deno_memory.ts");

  describe("denoRuntime reads", () => {
    test("chunks stay intact while reads switch between the small and the large buffer, paused or not", async () => {
      const accepted = deferred<Connection>();
      const listener = await denoRuntime.listen({ host: "127.0.0.1", port: 0, onConnection: accepted.resolve });
      const client = await denoRuntime.connect({ host: "127.0.0.1", port: listener.address.port });
      const server = await within(accepted.promise, 5000, "the accepted connection");
      const total = SIZES.reduce((sum, size) => sum + size, 0);
      const received = new Uint8Array(total);
      let got = 0;
      const keep = (chunk: Uint8Array) => {
        received.set(chunk.subarray(0, total - got), got);
        got += chunk.length;
      };
      let chunks = 0;
      let progress = () => {};
      server.setHandlers({
        onData(chunk) {
          // Every other chunk is kept past the callback: paused, then copied a tick later.
          if (chunks++ % 2 === 0) {
            keep(chunk);
            progress();
            return;
          }
          server.pause();
          setTimeout(() => {
            keep(chunk);
            server.resume();
            progress();
          }, 1);
        },
        onEnd() {},
        onClose() {},
      });
      client.setHandlers({ onData() {}, onEnd() {}, onClose() {} });
      try {
        const sent = new Uint8Array(total);
        let offset = 0;
        for (const [index, size] of SIZES.entries()) {
          const bytes = message(index, size);
          sent.set(bytes, offset);
          offset += size;
          client.write(bytes);
          // Mostly one message at a time, so reads see each size; every third
          // is followed at once by the next, so data arrives while paused.
          if (index % 3 === 2 && index < SIZES.length - 1) continue;
          const arrived = deferred<void>();
          progress = () => got >= offset && arrived.resolve();
          progress();
          await within(arrived.promise, 5000, `message ${index} (${size} bytes)`);
        }
        assert.equal(got, total);
        const mismatch = received.findIndex((byte, i) => byte !== sent[i]);
        assert.equal(mismatch, -1, `byte ${mismatch} differs`);
      } finally {
        client.close();
        server.close();
        listener.close();
      }
    });
  });

  describe("releaseDenoMemory()", () => {
    test("collects the garbage of a burst", async () => {
      await releaseDenoMemory();
      const base = Deno.memoryUsage().heapUsed;
      assert.ok(makeGarbage() > 0);
      const loaded = Deno.memoryUsage().heapUsed;
      await releaseDenoMemory();
      const after = Deno.memoryUsage().heapUsed;
      assert.ok(after - base < (loaded - base) / 2, `heap used ${base} -> ${loaded} -> ${after} bytes`);
    });

    test("without the FFI permission it still collects, and never throws", () => {
      const dir = mkdtempSync(join(tmpdir(), "srelay-release-"));
      try {
        const script = join(dir, "probe.ts");
        const module = new URL("./_deno_memory.ts", import.meta.url).href;
        writeFileSync(
          script,
          `import { releaseDenoMemory } from ${JSON.stringify(module)};\n` +
            `await releaseDenoMemory();\n` +
            `const base = Deno.memoryUsage().heapUsed;\n` +
            `let kept = 0;\n` +
            `for (let i = 0; i < 64; i++) kept += new Array(128 * 1024).fill(i).length;\n` +
            `const loaded = Deno.memoryUsage().heapUsed;\n` +
            `await releaseDenoMemory();\n` +
            `const after = Deno.memoryUsage().heapUsed;\n` +
            `console.log(kept > 0 && after - base < (loaded - base) / 2 ? "collected" : \`kept \${base} \${loaded} \${after}\`);\n`,
        );
        const run = spawnSync(Deno.execPath(), ["run", "--allow-read", "--no-config", script], {
          encoding: "utf8",
          env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
          timeout: 30_000,
        });
        assert.equal(run.stdout.trim(), "collected", run.stderr);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

/**
 * Accept errors for real: a child process (`accept_errors_child.ts`) listens
 * under `ulimit -n 64`, runs out of descriptors while clients wait in its
 * backlog, and must serve them by itself once descriptors free up.
 *
 * Per adapter of the host runtime:
 * - deno: each failed accept (EMFILE) reaches `onAcceptError` as a NetError
 *   and the retries back off (little CPU while out of descriptors);
 * - bun, and node:net on Bun: `Bun.listen` has no accept-error hook and
 *   retries in a busy loop (oven-sh/bun#32705), so only the recovery is
 *   checked;
 * - node:net on Deno has no case: Deno 2.9's node:net stops accepting for
 *   good after one EMFILE and reports nothing (see node.ts, and the README's
 *   runtime notes); nothing an adapter can do recovers it, so the server
 *   under Deno uses the Deno adapter (the default) for listening.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { deferred, sleep, within } from "./async_helpers.ts";

declare const Bun: unknown;

const onBun = typeof Bun !== "undefined";
const CHILD = fileURLToPath(new URL("./accept_errors_child.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** The child's descriptor limit: room for the runtime, little more. */
const FD_LIMIT = 64;
const CLIENTS = 3;
/** How long the child stays out of descriptors with clients waiting. */
const STARVED_MS = 700;

interface Case {
  readonly adapter: "deno" | "bun" | "node";
  /** The adapter reports failed accepts and backs off. */
  readonly reports: boolean;
}

const cases: Case[] = onBun
  ? [{ adapter: "bun", reports: false }, { adapter: "node", reports: false }]
  : [{ adapter: "deno", reports: true }];

describe("accept errors (EMFILE) under a low descriptor limit", () => {
  for (const { adapter, reports } of cases) {
    test(`${adapter}: serves waiting clients once descriptors free up`, { timeout: 30_000 }, async () => {
      const child = new Child(adapter);
      const clients: net.Socket[] = [];
      try {
        const { port } = await child.reply<{ port: number }>();
        child.send("exhaust");
        const { held } = await child.reply<{ held: number }>();
        assert.ok(held > 0 && held < FD_LIMIT, `the child held ${held} descriptors`);
        const served = [];
        for (let i = 0; i < CLIENTS; i++) {
          const client = net.connect({ host: "127.0.0.1", port });
          clients.push(client);
          served.push(replyOf(client));
        }
        await sleep(STARVED_MS);
        child.send("free");
        const report = await child.reply<
          { errors: { code: string; message: string }[]; cpuMs: number; wallMs: number }
        >();
        const replies = await within(Promise.all(served), 5_000, "the waiting clients to be served");
        assert.deepEqual(replies, Array(CLIENTS).fill("served\n"));
        if (reports) {
          assert.ok(report.errors.length >= 2, `${report.errors.length} accept errors reported`);
          assert.ok(report.errors.length <= 20, `${report.errors.length} accept errors: no backoff`);
          for (const error of report.errors) {
            assert.equal(error.code, "other");
            assert.match(error.message, /^Cannot accept on 127\.0\.0\.1:\d+: too many open files/);
          }
          const load = report.cpuMs / report.wallMs;
          assert.ok(load < 0.25, `the child used ${Math.round(load * 100)} % CPU while out of descriptors`);
        }
      } finally {
        for (const client of clients) client.destroy();
        await child.exit();
      }
    });
  }
});

/** The child process and its JSON replies. */
class Child {
  readonly #process: ChildProcess;
  readonly #replies: unknown[] = [];
  #waiting: ((reply: unknown) => void) | null = null;
  readonly #exited = deferred<void>();

  constructor(adapter: string) {
    const runner = onBun ? [CHILD, adapter] : ["run", "-A", "--quiet", CHILD, adapter];
    this.#process = spawn("bash", ["-c", `ulimit -n ${FD_LIMIT} && exec "$0" "$@"`, process.execPath, ...runner], {
      cwd: ROOT,
      env: { ...process.env, DENO_NO_UPDATE_CHECK: "1" },
      stdio: ["pipe", "pipe", "inherit"],
    });
    this.#process.on("exit", () => this.#exited.resolve());
    this.#process.stdin!.on("error", () => {});
    createInterface({ input: this.#process.stdout! }).on("line", (line) => {
      const reply: unknown = JSON.parse(line);
      if (this.#waiting !== null) this.#waiting(reply);
      else this.#replies.push(reply);
    });
  }

  send(command: string): void {
    this.#process.stdin!.write(`${command}\n`);
  }

  reply<T>(): Promise<T> {
    const queued = this.#replies.shift();
    if (queued !== undefined) return Promise.resolve(queued as T);
    const reply = new Promise<T>((resolve) => {
      this.#waiting = (value) => {
        this.#waiting = null;
        resolve(value as T);
      };
    });
    return within(reply, 10_000, "the child's reply");
  }

  /** Asks the child to exit; kills it when it does not within 5 s. */
  async exit(): Promise<void> {
    if (this.#process.exitCode === null) this.send("exit");
    try {
      await within(this.#exited.promise, 5_000, "the child to exit");
    } catch {
      this.#process.kill("SIGKILL");
      await within(this.#exited.promise, 5_000, "the killed child to exit");
    }
  }
}

/** Resolves with everything the client receives until the server's FIN. */
function replyOf(client: net.Socket): Promise<string> {
  let text = "";
  client.setEncoding("utf8");
  client.on("data", (chunk: string) => text += chunk);
  client.on("error", () => {});
  return new Promise((resolve) => client.once("end", () => resolve(text)));
}

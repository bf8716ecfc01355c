/**
 * The authentication section of the benchmark: the compiled srelay with
 * `-a p -U FILE` (one user, bcrypt cost 10, written by `srelay passwd`).
 *
 * - Logins per second: the load generator's `rate` with `LOADGEN_AUTH`, each
 *   session a full login (method 02), CONNECT and echo; 1 client, then 4.
 *   (4, not more: the throttle counts logins still being checked against
 *   the address, and refuses a sixth at once, see `throttle.ts`.)
 * - The echo latency of one established, logged-in session (64-byte echoes
 *   back to back, unpinned) with no guessing, then while 20 clients guess
 *   the user's password: each guess from a new loopback address (the
 *   throttle never engages, so every guess is checked by a hash worker and
 *   answered after the 1 s failure delay), then all 20 from one address
 *   (blocked after its first 5 failures: every later guess is refused at
 *   once, so the guessers turn into a connection flood).
 *
 * Rounds as in the main benchmark; the figures are the medians.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Child, sleep, stopChild } from "./children.ts";
import { AUTH_FIGURES, median, type SectionResult } from "./figures.ts";
import { latency, type Loadgen, type Login, rate, startGuessers, type TargetServer } from "./loadgen.ts";
import { type ServerContext, startSrelay } from "./servers.ts";
import { defaultHashThreads } from "../../src/auth/hash_queue.ts";

/** Sizes and durations of the section. */
export interface AuthSettings {
  readonly rounds: number;
  /** Seconds of each logins-per-second measurement. */
  readonly loginSeconds: number;
  /** Seconds of each latency measurement. */
  readonly latencySeconds: number;
  /** Seconds the guessers run before the latency is measured. */
  readonly guessWarmupSeconds: number;
  /** Guessing clients. */
  readonly guessers: number;
}

/** The user the benchmark logs in as. */
const LOGIN: Login = { user: "bench", password: "bench-password-10" };
/** Echoes at most per latency measurement (the time limit ends it first). */
const ECHO_COUNT = 1_000_000;
/** Logins in flight from one address that the throttle allows (it refuses the next). */
export const LOGIN_CONCURRENCY = 4;

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

/** Writes the user file with the binary's own `srelay passwd` (bcrypt cost 10). */
function writeUsers(binary: string, file: string): void {
  const result = spawnSync(binary, ["passwd", LOGIN.user, "-U", file], {
    input: `${LOGIN.password}\n`,
    encoding: "utf8",
    timeout: 60_000,
  });
  if (result.status !== 0) {
    throw new Error(`Cannot write the user file: srelay passwd exited with ${result.status}: ${result.stderr}`);
  }
}

/** Measures the authentication figures with the compiled binary `context.binary`. */
export async function measureAuth(
  loadgen: Loadgen,
  target: TargetServer,
  context: ServerContext,
  settings: AuthSettings,
  progress: (message: string) => void,
): Promise<SectionResult> {
  const label = "srelay binary";
  const setup = [
    `\`srelay -a p -U FILE\`, FILE with one user, bcrypt cost 10 (written by \`srelay passwd\`); hash workers: the default (${defaultHashThreads()} here: one fewer than the cores)`,
    `logins: each session connects, offers method 02, logs in, CONNECTs and echoes 32 bytes; ${settings.loginSeconds} s per figure; the 4 clients share one address`,
    `latency: one logged-in session, 64-byte echoes back to back for ${settings.latencySeconds} s, nothing pinned (the hash workers need the second core)`,
    `guessers: ${settings.guessers} load-generator threads, each connects, offers 02, sends the user name with a wrong password, waits for the answer and guesses again; the latency is measured from ${settings.guessWarmupSeconds} s after they start`,
  ];
  const samples: Record<string, number[]> = {};
  const notes: string[] = [];
  const add = (key: string, value: number) => (samples[key] ??= []).push(value);
  if (!existsSync(context.binary)) {
    return { server: label, setup, figures: {}, samples, skipped: `${context.binary} does not exist`, notes };
  }
  const users = join(context.workDir, "bench.users");
  writeUsers(context.binary, users);
  let child: Child | undefined;
  try {
    const server = await startSrelay(context, "srelay-auth", `${label} -a p -U`, [context.binary], [
      "-a",
      "p",
      "-U",
      users,
    ]);
    child = server.child;
    const proxy = server.address;
    progress(`started ${label} -a p -U on ${proxy}`);
    await rate(loadgen, proxy, target.address, 1, 0.3, 1000, LOGIN); // warm-up
    let firstNew = 0;
    for (let round = 0; round < settings.rounds; round++) {
      for (const [key, clients] of [["logins_1_per_s", 1], ["logins_4_per_s", LOGIN_CONCURRENCY]] as const) {
        const result = await rate(loadgen, proxy, target.address, clients, settings.loginSeconds, 1_000_000, LOGIN);
        if (result.errors > 0) {
          notes.push(`round ${round + 1}: ${result.errors} failed logins with ${clients} client(s)`);
        }
        add(key, result.connections / result.seconds);
      }
      await sleep(300);
      const quiet = await latency(
        loadgen,
        proxy,
        target.address,
        ECHO_COUNT,
        settings.latencySeconds,
        undefined,
        LOGIN,
      );
      add("echo_p50_quiet_us", quiet.p50_us);
      add("echo_p99_quiet_us", quiet.p99_us);
      for (const spread of ["new", "one"] as const) {
        const lifetime = settings.guessWarmupSeconds + settings.latencySeconds + 30;
        const guessers = await startGuessers(
          loadgen,
          proxy,
          target.address,
          LOGIN,
          settings.guessers,
          lifetime,
          spread,
          firstNew,
        );
        let echo;
        try {
          await sleep(settings.guessWarmupSeconds * 1000);
          echo = await latency(loadgen, proxy, target.address, ECHO_COUNT, settings.latencySeconds, undefined, LOGIN);
        } finally {
          const counts = await guessers.stop();
          if (spread === "new") {
            firstNew += counts.attempts + 1000;
            add("guesses_new_checked_per_s", counts.slow / counts.seconds);
          } else {
            add("guesses_one_refused_per_s", counts.fast / counts.seconds);
          }
          if (counts.other + counts.errors > 0) {
            notes.push(
              `round ${
                round + 1
              }, guessers (${spread}): ${counts.other} guesses answered otherwise than 01 01, ${counts.errors} failed to connect`,
            );
          }
          progress(`guessers (${spread}): ${JSON.stringify(counts)}`);
        }
        add(`echo_p50_guess_${spread}_us`, echo.p50_us);
        add(`echo_p99_guess_${spread}_us`, echo.p99_us);
        await sleep(500);
      }
      progress(
        `auth round ${round + 1}/${settings.rounds}: ${samples.logins_1_per_s?.at(-1)?.toFixed(1)}/${
          samples.logins_4_per_s?.at(-1)?.toFixed(1)
        } logins/s, p99 ${samples.echo_p99_quiet_us?.at(-1)?.toFixed(0)} µs quiet, ${
          samples.echo_p99_guess_new_us?.at(-1)?.toFixed(0)
        } µs (new), ${samples.echo_p99_guess_one_us?.at(-1)?.toFixed(0)} µs (one)`,
      );
    }
  } catch (error) {
    notes.push(`measurement failed: ${(error instanceof Error ? error.message : String(error)).split("\n")[0]}`);
    progress(`auth section failed: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    if (child !== undefined) await stopChild(child);
  }
  const figures: Record<string, number | null> = {};
  for (const { key } of AUTH_FIGURES) {
    const value = median(samples[key] ?? []);
    figures[key] = value === null ? null : round2(value);
  }
  for (const key of Object.keys(samples)) samples[key] = samples[key]!.map(round2);
  return { server: label, setup, figures, samples, notes };
}

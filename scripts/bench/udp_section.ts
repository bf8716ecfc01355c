/**
 * The UDP section of the benchmark: UDP ASSOCIATE datagrams per second and
 * round-trip latency through the compiled srelay, beside Dante's UDP relay
 * and beside no relay at all ("direct"), with a C client and a C echo target
 * (`scripts/bench/udpgen.c`, compiled here with `cc -O2`) on loopback.
 *
 * Each measurement opens one association (SOCKS5, no authentication) and
 * sends 64-byte payloads to the echo target through it: with 1 datagram in
 * flight for the latency (p50 and p99 of the round trips), then with
 * `WINDOW` in flight for the rate (echoes received per second). A datagram
 * not echoed within 250 ms is counted lost and its slot refilled.
 * microsocks relays TCP only: it is asked for UDP ASSOCIATE once and its
 * answer noted, and it gets no column.
 *
 * Each round measures the columns one after the other, in an order that
 * rotates, `pairs` times. The rates and latencies are medians over those
 * passes, the ratios medians of the passes' ratios; the loss is the share
 * of every datagram sent through the server in the section.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Child, logTail, sleep, startChild, stopChild, waitForLog } from "./children.ts";
import { median, type SectionFigureSpec, type SectionResult } from "./figures.ts";
import { findCommand, freePort, type ServerContext, startDante, startSrelay, waitForPort } from "./servers.ts";

/** Sizes and durations of the section. */
export interface UdpSettings {
  readonly rounds: number;
  /** Passes over the columns per round. */
  readonly pairs: number;
  /** Seconds of each latency and each rate measurement. */
  readonly seconds: number;
}

/** Datagrams in flight for the rate. */
const WINDOW = 32;
/** Payload bytes per datagram (the SOCKS5 UDP header adds 10). */
const SIZE = 64;
/** Most datagrams one measurement sends (its time limit ends it first). */
const MAX_DATAGRAMS = 2_000_000;

/**
 * The UDP section's figures. The Dante figures and the ratios are missing
 * (not null) when Dante is not installed.
 */
export const UDP_FIGURES: readonly SectionFigureSpec[] = [
  {
    key: "dgrams_direct_per_s",
    label: `datagrams/s, ${WINDOW} in flight, direct (no relay)`,
    higherIsBetter: true,
    digits: 0,
  },
  { key: "dgrams_srelay_per_s", label: `datagrams/s, ${WINDOW} in flight, srelay`, higherIsBetter: true, digits: 0 },
  { key: "dgrams_dante_per_s", label: `datagrams/s, ${WINDOW} in flight, Dante`, higherIsBetter: true, digits: 0 },
  { key: "dgrams_ratio", label: "ratio, datagrams/s (srelay ÷ Dante)", higherIsBetter: true, digits: 3 },
  { key: "p50_direct_us", label: "round trip p50, 1 in flight, direct (µs)", higherIsBetter: false, digits: 1 },
  { key: "p50_srelay_us", label: "round trip p50, 1 in flight, srelay (µs)", higherIsBetter: false, digits: 1 },
  { key: "p50_dante_us", label: "round trip p50, 1 in flight, Dante (µs)", higherIsBetter: false, digits: 1 },
  { key: "p50_ratio", label: "ratio, p50 (srelay ÷ Dante)", higherIsBetter: false, digits: 3 },
  { key: "p99_direct_us", label: "round trip p99, 1 in flight, direct (µs)", higherIsBetter: false, digits: 1 },
  { key: "p99_srelay_us", label: "round trip p99, 1 in flight, srelay (µs)", higherIsBetter: false, digits: 1 },
  { key: "p99_dante_us", label: "round trip p99, 1 in flight, Dante (µs)", higherIsBetter: false, digits: 1 },
  { key: "p99_ratio", label: "ratio, p99 (srelay ÷ Dante)", higherIsBetter: false, digits: 3 },
  { key: "loss_srelay_pct", label: "datagrams lost, srelay (% of all sent)", higherIsBetter: false, digits: 4 },
  { key: "loss_dante_pct", label: "datagrams lost, Dante (% of all sent)", higherIsBetter: false, digits: 4 },
];

/** srelay against Dante, in words. */
export function udpSummary(section: SectionResult): string[] {
  const f = section.figures;
  if (typeof f.dgrams_ratio !== "number" || typeof f.p99_ratio !== "number") return [];
  return [
    "",
    `srelay ÷ Dante: ${f.dgrams_ratio.toFixed(2)}× the datagrams/s, ${f.p99_ratio.toFixed(2)}× the p99 round trip.`,
  ];
}

/** What `udpgen run` prints. */
interface UdpRun {
  readonly sent: number;
  readonly received: number;
  readonly lost: number;
  readonly late: number;
  readonly bad: number;
  readonly seconds: number;
  readonly p50_us: number;
  readonly p99_us: number;
}

/** The compiled udpgen and a directory for its logs. */
interface Udpgen {
  readonly binary: string;
  readonly workDir: string;
}

let runs = 0;

function compileUdpgen(root: string, workDir: string): Udpgen {
  const binary = join(workDir, "udpgen");
  try {
    execFileSync("cc", ["-O2", "-o", binary, join(root, "scripts/bench/udpgen.c")], {
      stdio: ["ignore", "ignore", "pipe"],
      timeout: 60_000,
    });
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new Error(`Cannot compile the UDP load generator with cc (install gcc): ${detail}`);
  }
  return { binary, workDir };
}

/** Runs udpgen with `args` and parses the JSON line it prints; stopped after `timeoutMs`. */
async function udpgenJson<T>(udpgen: Udpgen, args: readonly string[], timeoutMs: number): Promise<T> {
  const child = startChild(`udpgen ${args[0]}`, udpgen.binary, args, {
    logFile: join(udpgen.workDir, `udpgen-${++runs}-${args[0]}.log`),
    captureStdout: true,
  });
  const timer = setTimeout(() => void stopChild(child, 500), timeoutMs);
  const code = await child.exited;
  clearTimeout(timer);
  const line = child.stdout().trim().split("\n").pop() ?? "";
  if (code !== 0 || !line.startsWith("{")) {
    const why = code === null ? `was stopped after ${timeoutMs / 1000} s` : `exited with code ${code}`;
    throw new Error(`Cannot measure with udpgen ${args.join(" ")}: it ${why}\n${line}\n${logTail(child)}`);
  }
  return JSON.parse(line) as T;
}

/** Datagrams through `proxy` (undefined: straight to the target) with `window` in flight, for `seconds`. */
function udpRun(udpgen: Udpgen, proxy: string | undefined, target: string, window: number, seconds: number) {
  return udpgenJson<UdpRun>(
    udpgen,
    ["run", proxy ?? "-", target, String(MAX_DATAGRAMS), String(window), String(seconds), String(SIZE)],
    (seconds + 30) * 1000,
  );
}

/** What microsocks answers to UDP ASSOCIATE, in words (it is started for the question and stopped). */
async function askMicrosocks(udpgen: Udpgen): Promise<string> {
  const command = findCommand("microsocks");
  if (command === undefined) return "microsocks is not installed; it relays TCP only anyway (CONNECT)";
  const port = await freePort();
  const child = startChild("microsocks", command, ["-i", "127.0.0.1", "-p", String(port)], { logFile: "/dev/null" });
  try {
    await waitForPort(child, port);
    const { rep } = await udpgenJson<{ rep: number }>(udpgen, ["probe", `127.0.0.1:${port}`], 15_000);
    return rep === 7
      ? "microsocks has no UDP relay: it answers UDP ASSOCIATE with REP 07 (command not supported), so it has no column"
      : `microsocks answered UDP ASSOCIATE with REP ${rep}; it is not measured (it relays TCP only)`;
  } finally {
    await stopChild(child);
  }
}

function round(key: string, value: number): number {
  if (key.endsWith("ratio")) return Math.round(value * 1000) / 1000;
  if (key.endsWith("pct")) return Math.round(value * 10_000) / 10_000;
  return Math.round(value * 100) / 100;
}

/** One column: `proxy` undefined for direct. */
interface UdpColumn {
  readonly name: "direct" | "srelay" | "dante";
  readonly proxy: string | undefined;
  sent: number;
  lost: number;
}

/** Measures the UDP figures: the compiled binary `context.binary`, Dante, and direct. */
export async function measureUdp(
  context: ServerContext,
  settings: UdpSettings,
  progress: (message: string) => void,
): Promise<SectionResult> {
  const server = "srelay binary, Dante, direct";
  const passes = settings.rounds * settings.pairs;
  const setup = [
    `a C client (\`scripts/bench/udpgen.c\`) asks for UDP ASSOCIATE (SOCKS5, no authentication) and sends ${SIZE}-byte payloads through the association to a C UDP echo target on 127.0.0.1; direct sends them to the target with no relay`,
    `latency: 1 datagram in flight for ${settings.seconds} s, p50 and p99 of the round trips; rate: ${WINDOW} in flight for ${settings.seconds} s, echoes received per second; a datagram not echoed within 250 ms counts as lost`,
    "srelay binary: `-f -i 127.0.0.1:0 -c <empty route table>`, default logging; Dante: `-N 2`, `command: udpassociate` and `udpreply` passed for 127.0.0.0/8; nothing pinned",
    `${passes} passes over the columns (the order rotates), one association per measurement`,
  ];
  const samples: Record<string, number[]> = {};
  const notes: string[] = [];
  const add = (key: string, value: number) => (samples[key] ??= []).push(value);
  if (!existsSync(context.binary)) {
    return { server, setup, figures: {}, samples, skipped: `${context.binary} does not exist`, notes };
  }
  const danteInstalled = findCommand("danted") !== undefined;
  if (!danteInstalled) notes.push("Dante is not installed (apt-get install dante-server): no Dante figures or ratios");
  const children: Child[] = [];
  const columns: UdpColumn[] = [];
  try {
    const udpgen = compileUdpgen(context.root, context.workDir);
    const echo = startChild("udp echo", udpgen.binary, ["echo"], {
      logFile: join(context.workDir, "udp-echo.log"),
      stdinPipe: true,
    });
    children.push(echo);
    const target = `127.0.0.1:${(await waitForLog(echo, /^port (\d+)$/m, 5000))[1]}`;
    notes.push(await askMicrosocks(udpgen));
    const srelay = await startSrelay(context, "srelay-udp", "srelay binary (UDP)", [context.binary]);
    children.push(srelay.child);
    columns.push({ name: "direct", proxy: undefined, sent: 0, lost: 0 });
    columns.push({ name: "srelay", proxy: srelay.address, sent: 0, lost: 0 });
    if (danteInstalled) {
      const dante = await startDante(context, "danted-udp", [
        "socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 command: udpassociate }",
        "socks pass { from: 0.0.0.0/0 to: 127.0.0.0/8 command: udpreply }",
      ]);
      children.push(dante.child);
      columns.push({ name: "dante", proxy: dante.address, sent: 0, lost: 0 });
    }
    progress(`UDP echo on ${target}; ${columns.map((c) => `${c.name} ${c.proxy ?? ""}`.trim()).join(", ")}`);
    for (const column of columns) await udpRun(udpgen, column.proxy, target, WINDOW, 0.2); // warm-up
    for (let pass = 0; pass < passes; pass++) {
      const order = columns.map((_, i) => columns[(i + pass) % columns.length]!);
      const taken: Record<string, number> = {};
      for (const column of order) {
        await sleep(300);
        const latency = await udpRun(udpgen, column.proxy, target, 1, settings.seconds);
        const flood = await udpRun(udpgen, column.proxy, target, WINDOW, settings.seconds);
        for (const run of [latency, flood]) {
          column.sent += run.sent;
          column.lost += run.lost;
          if (run.late + run.bad > 0) {
            notes.push(
              `pass ${
                pass + 1
              }, ${column.name}: ${run.late} echoes came after the 250 ms limit, ${run.bad} were not echoes of a datagram sent`,
            );
          }
        }
        taken[`p50_${column.name}_us`] = latency.p50_us;
        taken[`p99_${column.name}_us`] = latency.p99_us;
        taken[`dgrams_${column.name}_per_s`] = flood.received / flood.seconds;
      }
      for (const [key, value] of Object.entries(taken)) add(key, value);
      if (taken.dgrams_dante_per_s !== undefined) {
        add("dgrams_ratio", taken.dgrams_srelay_per_s! / taken.dgrams_dante_per_s);
        add("p50_ratio", taken.p50_srelay_us! / taken.p50_dante_us!);
        add("p99_ratio", taken.p99_srelay_us! / taken.p99_dante_us!);
      }
      progress(
        `udp pass ${pass + 1}/${passes}: ${
          columns.map((c) =>
            `${c.name} ${taken[`dgrams_${c.name}_per_s`]?.toFixed(0)}/s p50 ${
              taken[`p50_${c.name}_us`]?.toFixed(0)
            } p99 ${taken[`p99_${c.name}_us`]?.toFixed(0)} µs`
          ).join(", ")
        }`,
      );
    }
    for (const column of columns) {
      if (column.name !== "direct" && column.sent > 0) {
        add(`loss_${column.name}_pct`, (100 * column.lost) / column.sent);
      }
      if (column.lost > 0) notes.push(`${column.name}: ${column.lost} of ${column.sent} datagrams lost`);
    }
  } catch (error) {
    notes.push(`measurement failed: ${(error instanceof Error ? error.message : String(error)).split("\n")[0]}`);
    progress(`udp section failed: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    const echo = children[0];
    echo?.process.stdin?.end();
    for (const child of children) await stopChild(child, child === echo ? 1000 : 3000);
  }
  const figures: Record<string, number | null> = {};
  for (const { key } of UDP_FIGURES) {
    if (!danteInstalled && (key.includes("dante") || key.endsWith("ratio"))) continue;
    const value = median(samples[key] ?? []);
    figures[key] = value === null ? null : round(key, value);
  }
  for (const key of Object.keys(samples)) samples[key] = samples[key]!.map((v) => round(key, v));
  return { server, setup, figures, samples, notes };
}

/**
 * The PROXY protocol section of the benchmark: the connection rate of the
 * compiled srelay with `--proxy-protocol` (peers trusted by default:
 * 127.0.0.0/8 and ::1) when every session starts with a PROXY v2 header,
 * and with a v1 header, beside the same binary without `--proxy-protocol`
 * and sessions without a header. The header names the client
 * 198.51.100.7 (a source port of its own per session) and goes out in one
 * write with the SOCKS5 greeting, as a load balancer's would.
 *
 * Both servers run with `--allow-internal`: on a PROXY listener,
 * destinations on this host (the benchmark's target is on 127.0.0.1) are
 * blocked by default, and the server without `--proxy-protocol` gets the
 * option too so both do the same work apart from the header.
 *
 * Each group measures the three variants (no header, v2, v1) one right
 * after the other, in an order that rotates from group to group, with 1 and
 * 50 concurrent clients; each round has `pairs` groups. The figures are
 * medians over all groups, each ratio the median of the groups' ratios.
 *
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { type Child, sleep, stopChild } from "./children.ts";
import { median, type SectionFigureSpec, type SectionResult } from "./figures.ts";
import { type Loadgen, type ProxyHeader, rate, type TargetServer } from "./loadgen.ts";
import { type ServerContext, startSrelay } from "./servers.ts";

/** Sizes and durations of the section. */
export interface ProxyProtocolSettings {
  readonly rounds: number;
  /** Groups of measurements (no header, v2, v1) per round. */
  readonly pairs: number;
  readonly rateSeconds: number;
  readonly concurrency: number;
}

/** The client address the load generator's PROXY headers name (`PROXY_CLIENT` in loadgen.c). */
const HEADER_CLIENT = "198.51.100.7";

/**
 * The PROXY protocol section's figures: the connection rate with a v2 and
 * a v1 header on a `--proxy-protocol` listener, beside no header on a plain
 * listener, and the ratios.
 */
export const PROXY_PROTOCOL_FIGURES: readonly SectionFigureSpec[] = [
  {
    key: "conn_seq_plain_per_s",
    label: "connections/s, sequential, no --proxy-protocol",
    higherIsBetter: true,
    digits: 0,
  },
  { key: "conn_seq_v2_per_s", label: "connections/s, sequential, PROXY v2 header", higherIsBetter: true, digits: 0 },
  { key: "conn_seq_v2_ratio", label: "ratio, sequential, v2 (with ÷ without)", higherIsBetter: true, digits: 3 },
  { key: "conn_seq_v1_per_s", label: "connections/s, sequential, PROXY v1 header", higherIsBetter: true, digits: 0 },
  { key: "conn_seq_v1_ratio", label: "ratio, sequential, v1 (with ÷ without)", higherIsBetter: true, digits: 3 },
  {
    key: "conn_50_plain_per_s",
    label: "connections/s, 50 concurrent, no --proxy-protocol",
    higherIsBetter: true,
    digits: 0,
  },
  {
    key: "conn_50_v2_per_s",
    label: "connections/s, 50 concurrent, PROXY v2 header",
    higherIsBetter: true,
    digits: 0,
  },
  { key: "conn_50_v2_ratio", label: "ratio, 50 concurrent, v2 (with ÷ without)", higherIsBetter: true, digits: 3 },
  {
    key: "conn_50_v1_per_s",
    label: "connections/s, 50 concurrent, PROXY v1 header",
    higherIsBetter: true,
    digits: 0,
  },
  { key: "conn_50_v1_ratio", label: "ratio, 50 concurrent, v1 (with ÷ without)", higherIsBetter: true, digits: 3 },
];

/** Whether each header variant stays within 10 % of the rate without `--proxy-protocol`. */
export function proxyProtocolSummary(section: SectionResult): string[] {
  const verdict = (value: number | null | undefined) =>
    typeof value !== "number" ? "not measured" : value >= 0.9 ? "within 10 %: yes" : "within 10 %: **no**";
  const f = section.figures;
  return [
    "",
    `With --proxy-protocol, v2: sequential ${verdict(f.conn_seq_v2_ratio)}; 50 concurrent ${
      verdict(f.conn_50_v2_ratio)
    }. v1: sequential ${verdict(f.conn_seq_v1_ratio)}; 50 concurrent ${verdict(f.conn_50_v1_ratio)}.`,
  ];
}

function round(key: string, value: number): number {
  return key.endsWith("ratio") ? Math.round(value * 1000) / 1000 : Math.round(value * 100) / 100;
}

/** One variant: the server it goes to and the header its sessions start with. */
type Variant = readonly ["plain" | ProxyHeader, string, ProxyHeader | undefined];

/** Measures the PROXY protocol figures with the compiled binary `context.binary`. */
export async function measureProxyProtocol(
  loadgen: Loadgen,
  target: TargetServer,
  context: ServerContext,
  settings: ProxyProtocolSettings,
  progress: (message: string) => void,
): Promise<SectionResult> {
  const label = "srelay binary";
  const groups = settings.rounds * settings.pairs;
  const setup = [
    `with the header: \`--proxy-protocol --allow-internal\` (trusted peers: the default, 127.0.0.0/8 and ::1); every session starts with a PROXY v2 (or v1) header naming the client ${HEADER_CLIENT}, sent in one write with the SOCKS5 greeting`,
    "without: the same binary with `--allow-internal` only, sessions without a header; both log as in the main benchmark",
    `${groups} group${
      groups === 1 ? "" : "s"
    } of measurements, each measuring no header, v2 and v1 in turn (the order rotates): ${settings.rateSeconds} s with 1 client, then ${settings.rateSeconds} s with ${settings.concurrency}`,
  ];
  const samples: Record<string, number[]> = {};
  const notes: string[] = [];
  const add = (key: string, value: number) => (samples[key] ??= []).push(value);
  if (!existsSync(context.binary)) {
    return { server: label, setup, figures: {}, samples, skipped: `${context.binary} does not exist`, notes };
  }
  const children: Child[] = [];
  let headerSessions = 0;
  try {
    const plain = await startSrelay(context, "srelay-proxy-plain", `${label}, no --proxy-protocol`, [
      context.binary,
    ], ["--allow-internal"]);
    children.push(plain.child);
    const behind = await startSrelay(context, "srelay-proxy", `${label}, --proxy-protocol`, [context.binary], [
      "--proxy-protocol",
      "--allow-internal",
    ]);
    children.push(behind.child);
    progress(`started ${label} without --proxy-protocol on ${plain.address} and with it on ${behind.address}`);
    const variants: readonly Variant[] = [
      ["plain", plain.address, undefined],
      ["v2", behind.address, "v2"],
      ["v1", behind.address, "v1"],
    ];
    for (const [, address, header] of variants) {
      await rate(loadgen, address, target.address, 1, 0.2, 5000, undefined, header);
    }
    for (let group = 0; group < groups; group++) {
      const order = variants.map((_, i) => variants[(i + group) % variants.length]!);
      const taken: Record<string, number> = {};
      for (const [name, address, header] of order) {
        await sleep(300);
        for (const [concurrency, key] of [[1, "seq"], [settings.concurrency, "50"]] as const) {
          const result = await rate(
            loadgen,
            address,
            target.address,
            concurrency,
            settings.rateSeconds,
            200_000,
            undefined,
            header,
          );
          if (result.errors > 0) {
            notes.push(
              `group ${group + 1}, ${name}: ${result.errors} failed connections with ${concurrency} client(s)`,
            );
          }
          if (header !== undefined) headerSessions += result.connections;
          taken[`conn_${key}_${name}_per_s`] = result.connections / result.seconds;
        }
      }
      for (const [key, value] of Object.entries(taken)) add(key, value);
      for (const key of ["conn_seq", "conn_50"]) {
        for (const version of ["v2", "v1"]) {
          add(`${key}_${version}_ratio`, taken[`${key}_${version}_per_s`]! / taken[`${key}_plain_per_s`]!);
        }
      }
      progress(
        `proxy group ${group + 1}/${groups}: ${taken.conn_seq_plain_per_s?.toFixed(0)} vs ${
          taken.conn_seq_v2_per_s?.toFixed(0)
        } (v2) vs ${taken.conn_seq_v1_per_s?.toFixed(0)} (v1) /s sequential, ${
          taken.conn_50_plain_per_s?.toFixed(0)
        } vs ${taken.conn_50_v2_per_s?.toFixed(0)} vs ${
          taken.conn_50_v1_per_s?.toFixed(0)
        } /s with ${settings.concurrency}`,
      );
    }
    // The header's client is what srelay must log: proof that it read the headers rather than the peer address.
    await sleep(300);
    const log = readFileSync(behind.child.logFile, "utf8");
    const logged = log.split("\n").filter((line) => line.includes(`${HEADER_CLIENT}:`) && / done$/.test(line)).length;
    if (logged < headerSessions) {
      notes.push(
        `the --proxy-protocol server logged ${logged} finished sessions from ${HEADER_CLIENT}, fewer than the ${headerSessions} measured`,
      );
    } else {
      notes.push(
        `the --proxy-protocol server logged ${logged} finished sessions from ${HEADER_CLIENT}, the header's client (the measurements made ${headerSessions}, the warm-up the rest)`,
      );
    }
  } catch (error) {
    notes.push(`measurement failed: ${(error instanceof Error ? error.message : String(error)).split("\n")[0]}`);
    progress(`proxy section failed: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    for (const child of children) await stopChild(child);
  }
  const figures: Record<string, number | null> = {};
  for (const { key } of PROXY_PROTOCOL_FIGURES) {
    const value = median(samples[key] ?? []);
    figures[key] = value === null ? null : round(key, value);
  }
  for (const key of Object.keys(samples)) samples[key] = samples[key]!.map((v) => round(key, v));
  return { server: label, setup, figures, samples, notes };
}

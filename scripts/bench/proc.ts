/**
 * Reads memory and CPU use of a process and its descendants from Linux's
 * `/proc`, and describes the machine the benchmark ran on.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { cpus, release } from "node:os";

/** The fields of `/proc/PID/stat` the benchmark uses. */
interface Stat {
  readonly ppid: number;
  /** utime + stime + cutime + cstime, in clock ticks. */
  readonly ticks: number;
}

function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may contain spaces.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const field = (n: number) => Number(fields[n - 3] ?? "0");
  return { ppid: field(4), ticks: field(14) + field(15) + field(16) + field(17) };
}

/** `pid` and all its descendants that are alive now. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    const child = Number(name);
    if (!Number.isInteger(child)) continue;
    const stat = readStat(child);
    if (stat === undefined) continue;
    const siblings = children.get(stat.ppid) ?? [];
    siblings.push(child);
    children.set(stat.ppid, siblings);
  }
  const tree: number[] = [];
  const queue = [pid];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    tree.push(next);
    queue.push(...(children.get(next) ?? []));
  }
  return tree;
}

/** Sum of VmRSS over `pid` and its descendants, in KiB. */
export function treeRssKiB(pid: number): number {
  let total = 0;
  for (const member of processTree(pid)) {
    try {
      const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${member}/status`, "utf8"));
      total += Number(match?.[1] ?? "0");
    } catch {
      // The process exited while we looked.
    }
  }
  return total;
}

let clockTicks: number | undefined;

function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/**
 * CPU seconds (user + system) used so far by `pid` and its descendants,
 * including descendants that exited and were reaped inside the tree.
 */
export function treeCpuSeconds(pid: number): number {
  let ticks = 0;
  for (const member of processTree(pid)) ticks += readStat(member)?.ticks ?? 0;
  return ticks / ticksPerSecond();
}

/** Whether `taskset` (util-linux) is available to pin processes to CPUs. */
export function canPin(): boolean {
  return firstLine("taskset", ["--version"]) !== undefined;
}

/**
 * Sets the CPU affinity of every thread of `pid` and its descendants
 * (`cpus` in taskset's list form, e.g. `0` or `0-1`). Processes that exit
 * meanwhile are ignored.
 */
export function pinTree(pid: number, cpus: string): void {
  for (const member of processTree(pid)) {
    try {
      execFileSync("taskset", ["-a", "-p", "-c", cpus, String(member)], {
        stdio: "ignore",
        timeout: 10_000,
      });
    } catch {
      // The process exited while we looked.
    }
  }
}

/** The first line a command prints, or `undefined` when it cannot run. */
export function firstLine(command: string, args: readonly string[]): string | undefined {
  try {
    const out = execFileSync(command, args, {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 10_000,
    });
    return out.split("\n")[0]?.trim() || undefined;
  } catch {
    return undefined;
  }
}

/** What the report says about the machine. */
export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly kernel: string;
}

/** CPU model, core count and kernel release of this machine. */
export function machineInfo(): MachineInfo {
  let cpu = cpus()[0]?.model ?? "unknown";
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpu;
  } catch {
    // Not Linux: keep what node:os says.
  }
  return { cpu, cores: cpus().length, kernel: release() };
}

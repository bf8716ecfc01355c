/**
 * The release targets: one typed table mapping each operating system and
 * CPU (and libc, where it matters) to Bun's `--compile` target, Deno's
 * `deno compile --target` triple and the artifact's file name.
 *
 * Run as a script, it prints the host target's artifact name
 * (`srelay-linux-x64`), which `scripts/test.sh` uses to find the binary.
 *
 * @module
 */
import { existsSync, readdirSync } from "node:fs";
import process from "node:process";

/** Operating systems we ship binaries for, spelled as in artifact names. */
export type Os = "linux" | "darwin" | "windows";

/** CPU architectures we ship binaries for. */
export type Arch = "x64" | "arm64";

/** Bun's compile target strings for the rows of {@link TARGETS}. */
export type BunTarget =
  | "bun-linux-x64"
  | "bun-linux-arm64"
  | "bun-linux-x64-musl"
  | "bun-darwin-x64"
  | "bun-darwin-arm64"
  | "bun-windows-x64";

/** Deno's `deno compile --target` triples for the rows of {@link TARGETS}. */
export type DenoTriple =
  | "x86_64-unknown-linux-gnu"
  | "aarch64-unknown-linux-gnu"
  | "x86_64-apple-darwin"
  | "aarch64-apple-darwin"
  | "x86_64-pc-windows-msvc";

/** One release target. */
export interface Target {
  readonly os: Os;
  readonly arch: Arch;
  /** Set only for a Linux build against musl instead of glibc. */
  readonly libc?: "musl";
  /** Bun's target string for `Bun.build({ compile: { target } })`. */
  readonly bun: BunTarget;
  /** Deno's triple, or `undefined` where `deno compile` has no such target. */
  readonly deno?: DenoTriple;
}

/** Every target a release ships, in build order. */
export const TARGETS: readonly Target[] = [
  { os: "linux", arch: "x64", bun: "bun-linux-x64", deno: "x86_64-unknown-linux-gnu" },
  { os: "linux", arch: "arm64", bun: "bun-linux-arm64", deno: "aarch64-unknown-linux-gnu" },
  { os: "linux", arch: "x64", libc: "musl", bun: "bun-linux-x64-musl" },
  { os: "darwin", arch: "x64", bun: "bun-darwin-x64", deno: "x86_64-apple-darwin" },
  { os: "darwin", arch: "arm64", bun: "bun-darwin-arm64", deno: "aarch64-apple-darwin" },
  { os: "windows", arch: "x64", bun: "bun-windows-x64", deno: "x86_64-pc-windows-msvc" },
];

/** The artifact's file name: `srelay-<os>-<arch>[-musl][.exe]`. */
export function artifactName(target: Target): string {
  const base = ["srelay", target.os, target.arch, target.libc].filter(Boolean).join("-");
  return target.os === "windows" ? `${base}.exe` : base;
}

/** True when this Linux system's C library is musl (Alpine and the like). */
function hostUsesMusl(): boolean {
  if (process.platform !== "linux") return false;
  for (const dir of ["/lib", "/usr/lib"]) {
    if (existsSync(dir) && readdirSync(dir).some((name) => name.startsWith("ld-musl-"))) {
      return true;
    }
  }
  return false;
}

/**
 * The row of {@link TARGETS} for the machine this runs on, or `undefined`
 * when no release target matches it (e.g. FreeBSD or Windows on arm64).
 */
export function hostTarget(): Target | undefined {
  const os = process.platform === "win32" ? "windows" : process.platform;
  const libc = hostUsesMusl() ? "musl" : undefined;
  return TARGETS.find((t) => t.os === os && t.arch === process.arch && t.libc === libc);
}

if (import.meta.main) {
  const host = hostTarget();
  if (host === undefined) {
    console.error(
      `Cannot pick a host target: ${process.platform}-${process.arch} is not a release target`,
    );
    process.exit(1);
  }
  console.log(artifactName(host));
}

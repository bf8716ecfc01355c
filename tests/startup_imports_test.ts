/**
 * What the compiled binary loads before its start-up line: every module
 * `src/entry/bun.ts` reaches through static imports (`scripts/build.ts`
 * splits what `import()` loads into chunks that load on first use). A few
 * node: modules that only some runs need cost milliseconds on every start
 * once one static import reaches them (node:http alone about 4 ms), so they,
 * and the srelay modules that use them, must stay behind an `import()`:
 * node:http and node:dgram (the node:net adapter, `--metrics` on it),
 * node:child_process (background mode, `--workers`), node:dgram (UDP
 * syslog) and bun:ffi (crypt(3) for host accounts).
 *
 * @module
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const ENTRY = "src/entry/bun.ts";
/** node: modules the start-up path must not load. */
const LAZY_BUILTINS = ["node:http", "node:child_process", "node:dgram", "bun:ffi"];
/** srelay modules that load their node: modules for runs that need them. */
const LAZY_MODULES = [
  "src/runtime/node.ts",
  "src/runtime/syslog_udp.ts",
  "src/runtime/crypt_bun.ts",
  "src/cli/ready_child.ts",
  "src/auth/passwd_command.ts",
  "src/app/metrics.ts",
  "src/app/supervise.ts",
];

/**
 * A statement that imports values at load time: `import ... from "x"`,
 * `import "x"` and `export ... from "x"` at the start of a line (JSDoc
 * examples start with ` * `), but not `import type` or `export type`.
 */
const STATIC_IMPORT = /^(?:import|export)\s+(?!type\b)(?:([^;]*?)\s*from\s*)?"([^"]+)"/gm;

/** True when every name in `{ ... }` is marked `type` (TypeScript drops the import). */
function onlyTypes(clause: string | undefined): boolean {
  const names = clause?.trim().match(/^\{([\s\S]*)\}$/)?.[1];
  if (names === undefined) return false;
  const parts = names.split(",").map((part) => part.trim()).filter((part) => part !== "");
  return parts.length > 0 && parts.every((part) => part.startsWith("type "));
}

/** Specifiers that `source` imports statically. */
export function staticImports(source: string): string[] {
  return [...source.matchAll(STATIC_IMPORT)].filter((m) => !onlyTypes(m[1])).map((m) => m[2] as string);
}

/**
 * Every module reached from `entry` (a path relative to the repository)
 * through static imports, each with the chain of files that reaches it.
 */
export function staticGraph(entry: string, read: (path: string) => string): Map<string, string[]> {
  const reached = new Map<string, string[]>();
  const pending: [string, string[]][] = [[entry, []]];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [path, chain] = next;
    if (reached.has(path)) continue;
    reached.set(path, chain);
    if (!path.endsWith(".ts")) continue;
    for (const specifier of staticImports(read(path))) {
      const target = specifier.startsWith(".") ? normalize(join(dirname(path), specifier)) : specifier;
      pending.push([target, [...chain, path]]);
    }
  }
  return reached;
}

const readSource = (path: string) => readFileSync(join(ROOT, path), "utf8");

describe("start-up imports of the compiled binary", () => {
  test(`${ENTRY} reaches none of the modules only some runs need without import()`, () => {
    const graph = staticGraph(ENTRY, readSource);
    // The walk must see the start-up path at all, or it would find nothing forbidden either.
    for (const module of ["src/main.ts", "src/app/compose.ts", "src/runtime/bun.ts"]) {
      assert.ok(graph.has(module), module);
    }
    const found = [...LAZY_BUILTINS, ...LAZY_MODULES]
      .filter((module) => graph.has(module))
      .map((module) => `${module} <- ${graph.get(module)?.join(" <- ")}`);
    assert.deepEqual(found, []);
  });
});

describe("staticGraph", () => {
  const files: Record<string, string> = {
    "src/entry/x.ts": [
      "/**",
      ' * import { a } from "../never.ts";',
      " */",
      'import { run } from "../main.ts";',
      'import type { Only } from "../types_only.ts";',
      'import { type A, type B } from "../types_too.ts";',
      "import {",
      "  one,",
      "  type Two,",
      '} from "../multi.ts";',
      'export { three } from "../reexport.ts";',
      'const lazy = () => import("../lazy.ts");',
    ].join("\n"),
    "src/main.ts": 'import { createServer } from "node:http";\n',
    "src/multi.ts": "",
    "src/reexport.ts": 'import "node:dgram";\n',
  };
  const read = (path: string) => files[path] ?? assert.fail(`read ${path}, which the test does not have`);

  test("follows value imports and re-exports, not types, comments or import()", () => {
    const graph = staticGraph("src/entry/x.ts", read);
    assert.deepEqual([...graph.keys()].sort(), [
      "node:dgram",
      "node:http",
      "src/entry/x.ts",
      "src/main.ts",
      "src/multi.ts",
      "src/reexport.ts",
    ]);
    assert.deepEqual(graph.get("node:http"), ["src/entry/x.ts", "src/main.ts"]);
  });
});

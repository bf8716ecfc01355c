/**
 * The runtime boundary: only `src/runtime/` and `src/entry/` may touch a
 * runtime's own API. Every other `.ts` file under `src/` (tests included)
 * must not use `Deno.` or `Bun.` in code, nor import `node:net`,
 * `node:dgram`, `bun` or `bun:*` (bare `net` and `dgram` count as the
 * `node:` ones). Comments, and words inside string or template text, are
 * prose and do not count. A string that is exactly `node:net`,
 * `node:dgram` or `bun:*` counts wherever it stands (it may feed a dynamic
 * `import()`); `bun`, `net` and `dgram` count only as import specifiers.
 *
 * @module
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Folders (relative to the repository) allowed to use runtime APIs. */
const ALLOWED = ["src/runtime/", "src/entry/"];
/** `Deno.` or `Bun.` (also `?.`) as code. */
const RUNTIME_GLOBAL = /\b(Deno|Bun)\s*\??\./g;
/** Module names no file outside the allowed folders may import, flagged in any string. */
const FORBIDDEN_MODULE = /^(node:net|node:dgram|bun:.+)$/;
/** Names that are forbidden modules only as import specifiers (elsewhere `"bun"` may be a runtime's name). */
const BARE_MODULE = /^(net|dgram|bun)$/;
/** Code that a module specifier follows. */
const SPECIFIER_CONTEXT = /(\bfrom|\bimport|\bimport\s*\(|\brequire\s*\(|\bmodule)$/;
/** Code after which a `/` starts a regular expression rather than a division. */
const REGEX_CONTEXT =
  /(^|[(,=:[!&|?{};+\-*%<>~^]|\b(return|typeof|instanceof|in|of|new|delete|void|throw|case|do|else|yield|await))$/;

/** A string or template literal's text, where it starts, and whether it is a module specifier. */
interface Literal {
  readonly value: string;
  readonly start: number;
  readonly specifier: boolean;
}

/** One forbidden use: its line (from 1) and what was found. */
export interface Finding {
  readonly line: number;
  readonly use: string;
}

/**
 * Splits TypeScript source into code, in which comments and the insides of
 * string, template and regular-expression literals are blanked (newlines
 * kept, so offsets and lines still match the source), and the literals.
 */
function lex(source: string): { code: string; literals: Literal[] } {
  const out: string[] = [];
  const literals: Literal[] = [];
  /** Brace depths at which an open `${` of a template began. */
  const substitutions: number[] = [];
  let braces = 0;
  let i = 0;
  const blank = (from: number, to: number) => {
    for (let j = from; j < to; j++) out.push(source[j] === "\n" ? "\n" : " ");
  };
  /** The last code before the current position, without trailing blanks: enough to see the previous token. */
  const recent = () => {
    let end = out.length;
    while (end > 0 && /^\s*$/.test(out[end - 1] ?? "")) end--;
    return out.slice(Math.max(0, end - 16), end).join("");
  };
  const addLiteral = (value: string, start: number) => {
    literals.push({ value, start, specifier: SPECIFIER_CONTEXT.test(recent()) });
  };
  /** Reads template text from `i` up to its closing backquote or a `${`, blanking it. */
  const templateText = () => {
    const start = i;
    while (i < source.length && source[i] !== "`" && !(source[i] === "$" && source[i + 1] === "{")) {
      i += source[i] === "\\" ? 2 : 1;
    }
    i = Math.min(i, source.length);
    addLiteral(source.slice(start, i), start);
    blank(start, i);
    if (source[i] === "`") {
      out.push("`");
      i++;
    } else if (i < source.length) {
      out.push("${");
      i += 2;
      substitutions.push(braces);
      braces++;
    }
  };
  while (i < source.length) {
    const c = source[i] ?? "";
    const next = source[i + 1];
    if (c === "/" && next === "/") {
      const end = source.indexOf("\n", i);
      const stop = end < 0 ? source.length : end;
      blank(i, stop);
      i = stop;
    } else if (c === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2);
      const stop = end < 0 ? source.length : end + 2;
      blank(i, stop);
      i = stop;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < source.length && source[j] !== c && source[j] !== "\n") j += source[j] === "\\" ? 2 : 1;
      addLiteral(source.slice(i + 1, j), i);
      out.push(c);
      blank(i + 1, j);
      if (j < source.length) out.push(source[j] === "\n" ? "\n" : c);
      i = j + 1;
    } else if (c === "`") {
      out.push("`");
      i++;
      templateText();
    } else if (c === "}" && substitutions.length > 0 && braces - 1 === substitutions[substitutions.length - 1]) {
      substitutions.pop();
      braces--;
      out.push("}");
      i++;
      templateText();
    } else if (c === "/" && REGEX_CONTEXT.test(recent())) {
      let j = i + 1;
      let inClass = false;
      while (j < source.length && source[j] !== "\n" && (inClass || source[j] !== "/")) {
        if (source[j] === "[") inClass = true;
        else if (source[j] === "]") inClass = false;
        j += source[j] === "\\" ? 2 : 1;
      }
      out.push("/");
      blank(i + 1, j);
      if (j < source.length) out.push(source[j] ?? "");
      i = j + 1;
    } else {
      if (c === "{") braces++;
      else if (c === "}") braces--;
      out.push(c);
      i++;
    }
  }
  return { code: out.join(""), literals };
}

/** Every runtime-specific use in a TypeScript source, in source order. */
export function findRuntimeUses(source: string): Finding[] {
  const { code, literals } = lex(source);
  const lineAt = (offset: number) => source.slice(0, offset).split("\n").length;
  const found: Array<Finding & { offset: number }> = [];
  for (const match of code.matchAll(RUNTIME_GLOBAL)) {
    found.push({ offset: match.index, line: lineAt(match.index), use: match[0].replace(/\s+/g, "") });
  }
  for (const literal of literals) {
    if (FORBIDDEN_MODULE.test(literal.value) || (literal.specifier && BARE_MODULE.test(literal.value))) {
      found.push({ offset: literal.start, line: lineAt(literal.start), use: JSON.stringify(literal.value) });
    }
  }
  return found.sort((a, b) => a.offset - b.offset).map(({ line, use }) => ({ line, use }));
}

function sourceFiles(dir: string, found: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) sourceFiles(path, found);
    else if (entry.isFile() && entry.name.endsWith(".ts")) found.push(path);
  }
  return found;
}

describe("runtime boundary", () => {
  test("no file under src/ outside src/runtime/ and src/entry/ uses a runtime's own API", () => {
    const files = sourceFiles(join(ROOT, "src"))
      .map((path) => relative(ROOT, path).split("\\").join("/"))
      .filter((path) => !ALLOWED.some((folder) => path.startsWith(folder)))
      .sort();
    assert.ok(files.length > 20, `expected the source tree under ${ROOT}src, found ${files.length} files`);
    const violations = files.flatMap((path) =>
      findRuntimeUses(readFileSync(join(ROOT, path), "utf8")).map(({ line, use }) => `${path}:${line}: ${use}`)
    );
    assert.deepEqual(violations, [], `runtime APIs belong in ${ALLOWED.join(" or ")}:\n${violations.join("\n")}`);
  });
});

describe("findRuntimeUses", () => {
  const cases: Array<[name: string, source: string, expected: Finding[]]> = [
    ["a named import of node:net", `import { isIP } from "node:net";\n`, [{ line: 1, use: '"node:net"' }]],
    ["a default import of node:dgram", `import dgram from 'node:dgram';`, [{ line: 1, use: '"node:dgram"' }]],
    ["bun:ffi", `import { dlopen } from "bun:ffi";`, [{ line: 1, use: '"bun:ffi"' }]],
    ["the bun module", `import { serve } from "bun";`, [{ line: 1, use: '"bun"' }]],
    ["a re-export", `export { isIP } from "node:net";`, [{ line: 1, use: '"node:net"' }]],
    ["a type-only import", `import type { Socket } from "node:net";`, [{ line: 1, use: '"node:net"' }]],
    ["a dynamic import", `const net = await import("node:net");`, [{ line: 1, use: '"node:net"' }]],
    ["a template-literal dynamic import", "await import(`node:dgram`);", [{ line: 1, use: '"node:dgram"' }]],
    ["a specifier kept in a variable", `const name = "node:net";`, [{ line: 1, use: '"node:net"' }]],
    ["a bare net import", `import net from "net";`, [{ line: 1, use: '"net"' }]],
    ["a bare dgram require", `const dgram = require("dgram");`, [{ line: 1, use: '"dgram"' }]],
    ["Deno. in code", `const pid = Deno.pid;`, [{ line: 1, use: "Deno." }]],
    ["Bun. in code on a later line", `\n\nconst file = Bun.file("x");`, [{ line: 3, use: "Bun." }]],
    ["globalThis.Deno?.", `const env = globalThis.Deno?.env;`, [{ line: 1, use: "Deno?." }]],
    ["a Deno type", `let conn: Deno.Conn;`, [{ line: 1, use: "Deno." }]],
    ["Deno. inside a template substitution", "const s = `pid ${Deno.pid}`;", [{ line: 1, use: "Deno." }]],
    [
      "Deno. after a nested template in a substitution",
      "const s = `a ${`b ${x}`} c`; Deno.exit(0);",
      [{ line: 1, use: "Deno." }],
    ],
    ["Deno. after a regex holding a quote and //", `const re = /"\\/\\//; Deno.exit(1);`, [{ line: 1, use: "Deno." }]],
    ["Deno. after a division", `const half = total / 2; Deno.exit(half / 1);`, [{ line: 1, use: "Deno." }]],
    ["a line comment", `// uses Deno.listen and "node:net"\nconst x = 1;`, []],
    ["a block comment", `/* Bun.serve, import from "node:dgram" */ const x = 1;`, []],
    [
      "JSDoc",
      "/**\n * Wraps Deno.connect and Bun.connect (see node:net).\n" +
      ' * @example\n * import net from "node:net";\n */\nexport const x = 1;',
      [],
    ],
    ["prose in a string", `throw new Error("Deno.listen failed; node:net adapter");`, []],
    ["prose in a template", "const help = `--io node   Socket layer: node:net. Bun.serve is not used`;", []],
    ["a word that merely contains the name", `const myDeno = 1; const Bunny = { x: 1 }; Bunny.x;`, []],
    ["a property named Deno", `const runtimes = { Deno: 1, Bun: 2 }; "Bun" in globalThis;`, []],
    ["a regex that mentions Deno.", `const re = /Deno\\.listen/;`, []],
    ["net as a plain string", `const kind = "net";`, []],
    ["bun as a runtime's name", `readonly name: "deno" | "bun";`, []],
    ["node:net inside longer text", `const x = "node:net is the fallback";`, []],
  ];
  for (const [name, source, expected] of cases) {
    test(name, () => {
      assert.deepEqual(findRuntimeUses(source), expected);
    });
  }

  test("today's src/main.ts import of isIP would have been caught", () => {
    const source =
      `/**\n * The program.\n *\n * @module\n */\nimport process from "node:process";\nimport { isIP } from "node:net";\n`;
    assert.deepEqual(findRuntimeUses(source), [{ line: 7, use: '"node:net"' }]);
  });
});

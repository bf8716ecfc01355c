/**
 * crypt(3) of the host's libcrypt on Deno, through `Deno.dlopen` (needs
 * `--allow-ffi`). Every scheme the host's libcrypt knows works (on
 * libxcrypt: yescrypt, SHA-crypt, bcrypt, MD5-crypt...).
 *
 * The call is `nonblocking`: Deno runs it on a thread of its blocking pool
 * and returns a Promise, so a hash that takes tens of milliseconds never
 * stalls the event loop. crypt(3) itself is not thread-safe, so this calls
 * libxcrypt's `crypt_rn` (or `crypt_r` where there is no `crypt_rn`) with a
 * work area of its own for each call, wiped afterwards.
 *
 * @module
 */
import type { CryptFunction } from "../auth/verifier.ts";
import { libcryptPaths } from "./_libcrypt_paths.ts";

/** `sizeof(struct crypt_data)` in libxcrypt. */
const CRYPT_DATA_SIZE = 32768;
/** Large enough for glibc's own (older, larger) `struct crypt_data`, used with `crypt_r`. */
const CRYPT_R_DATA_SIZE = 262144;

const ENCODER = new TextEncoder();

function cString(text: string): Uint8Array<ArrayBuffer> {
  const bytes = ENCODER.encode(text);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  bytes.fill(0);
  return out;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Calls crypt and reads its result before the work area (which holds it) is wiped. */
type Call = (key: Uint8Array<ArrayBuffer>, setting: Uint8Array<ArrayBuffer>) => Promise<string | null>;

function read(pointer: Deno.PointerValue): string | null {
  return pointer === null ? null : Deno.UnsafePointerView.getCString(pointer);
}

function open(name: string): { call: Call; symbol: string } {
  try {
    const library = Deno.dlopen(
      name,
      {
        crypt_rn: { parameters: ["buffer", "buffer", "buffer", "i32"], result: "pointer", nonblocking: true },
      } as const,
    );
    return {
      symbol: "crypt_rn",
      call: async (key, setting) => {
        const data = new Uint8Array(CRYPT_DATA_SIZE);
        try {
          return read(await library.symbols.crypt_rn(key, setting, data, data.length));
        } finally {
          data.fill(0);
        }
      },
    };
  } catch (error) {
    if (!/crypt_rn/.test(describe(error))) throw error;
  }
  const library = Deno.dlopen(
    name,
    {
      crypt_r: { parameters: ["buffer", "buffer", "buffer"], result: "pointer", nonblocking: true },
    } as const,
  );
  return {
    symbol: "crypt_r",
    call: async (key, setting) => {
      const data = new Uint8Array(CRYPT_R_DATA_SIZE);
      try {
        return read(await library.symbols.crypt_r(key, setting, data));
      } finally {
        data.fill(0);
      }
    },
  };
}

/**
 * Opens libcrypt and returns its crypt(3). Throws an `Error` that says what
 * is missing when it cannot: no FFI permission (`--allow-ffi`), or no
 * libcrypt on this system (macOS and Windows have none to use).
 */
export function loadDenoCrypt(libraries: readonly string[] = libcryptPaths()): Promise<CryptFunction> {
  const failures: string[] = libraries.length === 0 ? ["libcrypt.so.1 not found"] : [];
  for (const name of libraries) {
    let opened: { call: Call; symbol: string };
    try {
      opened = open(name);
    } catch (error) {
      const kind = (error as { name?: unknown }).name;
      if (kind === "NotCapable" || kind === "PermissionDenied") {
        return Promise.reject(
          new Error(
            `Cannot use the host's accounts: Deno needs --allow-ffi to call crypt(3) in libcrypt (${describe(error)})`,
          ),
        );
      }
      failures.push(`${name}: ${describe(error)}`);
      continue;
    }
    const { call } = opened;
    const crypt: CryptFunction = async (key, setting) => {
      const keyBytes = cString(key);
      try {
        const result = await call(keyBytes, cString(setting));
        return result === null || result.startsWith("*") ? null : result;
      } finally {
        keyBytes.fill(0);
      }
    };
    return Promise.resolve(crypt);
  }
  return Promise.reject(
    new Error(
      `Cannot use the host's accounts: no usable libcrypt (${
        failures.join("; ")
      }); host accounts need Linux with libcrypt.so.1 (libxcrypt), or use -U FILE`,
    ),
  );
}

/**
 * Runs one `Connector` against a hop listening on loopback: connects with a
 * runtime, speaks the connector's protocol through an `Inbox`, and returns
 * what a chain dialer would (the bound address and the leftover bytes).
 *
 * @module
 */
import { Inbox } from "../../src/io/inbox.ts";
import type { Target } from "../../src/protocol/target.ts";
import type { Connection, NetRuntime } from "../../src/runtime/types.ts";
import type { Connector } from "../../src/upstream/dialer.ts";
import { collect, text, utf8 } from "./connection_io.ts";

/** The outcome of a successful `runConnector`. */
export interface ConnectorRun {
  readonly connection: Connection;
  readonly bound: Target;
  readonly rest: Uint8Array;
}

/**
 * Connects to `hop` and runs `connector` toward `target`. The connection is
 * closed when the connector throws; otherwise the caller closes it.
 */
export async function runConnector(
  runtime: NetRuntime,
  hop: { readonly host: string; readonly port: number },
  connector: Connector,
  target: Target,
  timeoutMs = 3000,
): Promise<ConnectorRun> {
  const connection = await runtime.connect({ host: hop.host, port: hop.port });
  const inbox = new Inbox(connection);
  try {
    const { bound } = await connector.connect(connection, inbox, target, AbortSignal.timeout(timeoutMs));
    return { connection, bound, rest: inbox.takeRest() };
  } catch (error) {
    connection.close();
    throw error;
  }
}

/** Starts a hop with `options`, runs `body` against it, and always closes the hop. */
export async function withStartedHop<O, H extends { close(): Promise<void> }, T>(
  start: (options: O) => Promise<H>,
  options: O,
  body: (hop: H) => Promise<T>,
): Promise<T> {
  const hop = await start(options);
  try {
    return await body(hop);
  } finally {
    await hop.close();
  }
}

/** Sends "ping" and returns everything received (rest included) once `expected.length` bytes arrived. */
export async function roundTrip(run: ConnectorRun, expected = "ping"): Promise<string> {
  const received = collect(run.connection, run.rest);
  run.connection.write(utf8("ping"));
  const bytes = await received.waitForBytes(expected.length);
  run.connection.close();
  return text(bytes);
}

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

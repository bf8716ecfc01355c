/**
 * A loopback port whose SYNs go unanswered, for connect timeouts: a listener
 * (python3) that never accepts, with a backlog of 0 already filled, so the
 * kernel drops every further SYN and a connect hangs.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { createConnection, type Socket } from "node:net";

/** A running SYN sink on 127.0.0.1. */
export interface SynSink {
  readonly port: number;
  /** Stops the listener: later SYNs to the port are refused. */
  close(): void;
}

/** Starts a SYN sink; rejects if python3 cannot be started or prints no port within 5 s. */
export async function startSynSink(): Promise<SynSink> {
  const child = spawn("python3", [
    "-c",
    "import socket,sys\ns=socket.socket();s.bind(('127.0.0.1',0));s.listen(0)\n" +
    "print(s.getsockname()[1],flush=True);sys.stdin.read()",
  ], { stdio: ["pipe", "pipe", "inherit"] });
  const close = () => {
    for (const socket of filling) socket.destroy();
    child.stdin!.end();
    child.kill();
  };
  const filling: Socket[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      child.once("error", reject);
      child.stdout!.once("data", (chunk) => resolve(Number(String(chunk))));
      timer = setTimeout(() => reject(new Error("the SYN sink printed no port within 5 s")), 5000);
    });
  } catch (error) {
    close();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  for (let i = 0; i < 4; i++) filling.push(createConnection({ host: "127.0.0.1", port }).on("error", () => {}));
  await new Promise((resolve) => setTimeout(resolve, 200));
  return { port, close };
}

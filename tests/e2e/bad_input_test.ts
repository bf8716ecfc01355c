/**
 * Malformed and hostile clients against the real CLI: each gets the reply
 * the RFCs prescribe or a clean close, and the server keeps serving.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { openClient, socks5ConnectBytes } from "../helpers/socks_client.ts";
import { type RunningServer, serverModes, startServer } from "../helpers/srelay_process.ts";
import { startEchoServer } from "../helpers/fake_hops.ts";
import type { TestServer } from "../helpers/targets.ts";

for (const { mode, skip } of serverModes()) {
  describe(`srelay (${mode}) with bad input`, () => {
    let server: RunningServer;
    let echo: TestServer;

    before(async () => {
      if (skip) return;
      echo = await startEchoServer();
      server = await startServer(mode, ["-i", "127.0.0.1:0", "--handshake-timeout", "1"]);
    });

    after(async () => {
      if (skip) return;
      await server?.stop();
      await echo?.close();
    });

    async function stillServes() {
      const client = await openClient("127.0.0.1", server.port);
      client.send([...socks5ConnectBytes("127.0.0.1", echo.port), 0x61]);
      const reply = await client.read(13);
      assert.equal(reply[3], 0, "CONNECT after the bad client succeeded");
      assert.equal(reply[12], 0x61);
      client.close();
    }

    test("a garbage first byte is closed without a reply", { skip }, async () => {
      const client = await openClient("127.0.0.1", server.port);
      client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      assert.equal((await client.readToEnd(3000)).length, 0);
      await stillServes();
      await server.waitForOutput(/handshake failed: .*first byte 0x47 is not SOCKS4 or SOCKS5/);
    });

    test("NMETHODS=0 gets 05 FF and a close", { skip }, async () => {
      const client = await openClient("127.0.0.1", server.port);
      client.send([5, 0]);
      assert.deepEqual([...await client.readToEnd(3000)], [5, 0xff]);
      await stillServes();
    });

    test("no acceptable method gets 05 FF and a close", { skip }, async () => {
      const client = await openClient("127.0.0.1", server.port);
      client.send([5, 1, 2]);
      assert.deepEqual([...await client.readToEnd(3000)], [5, 0xff]);
      await server.waitForOutput(/no acceptable authentication method \(offered 0x02\)/);
      await stillServes();
    });

    test("an unknown command gets REP 07 with a full reply", { skip }, async () => {
      const client = await openClient("127.0.0.1", server.port);
      client.send([5, 1, 0, 5, 9, 0, 1, 127, 0, 0, 1, 0, 80]);
      assert.deepEqual([...await client.readToEnd(3000)], [5, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0]);
      await stillServes();
    });

    test("an unknown address type gets REP 08", { skip }, async () => {
      const client = await openClient("127.0.0.1", server.port);
      client.send([5, 1, 0, 5, 1, 0, 7, 1, 2, 3, 4]);
      assert.deepEqual([...await client.readToEnd(3000)], [5, 0, 5, 8, 0, 1, 0, 0, 0, 0, 0, 0]);
      await stillServes();
    });

    test("a truncated request followed by FIN is closed", { skip }, async () => {
      const client = await openClient("127.0.0.1", server.port);
      client.socket.end(Uint8Array.from([5, 1, 0, 5, 1, 0, 1, 127]));
      assert.deepEqual([...await client.readToEnd(3000)], [5, 0]);
      await stillServes();
    });

    test("a truncated SOCKS4 request followed by FIN is closed", { skip }, async () => {
      const client = await openClient("127.0.0.1", server.port);
      client.socket.end(Uint8Array.from([4, 1, 0, 80, 127, 0]));
      assert.equal((await client.readToEnd(3000)).length, 0);
      await stillServes();
    });

    test("a 255-byte domain is decoded and answered host unreachable", { skip }, async () => {
      const label = "a".repeat(63);
      const name = `${label}.${label}.${label}.${"b".repeat(61)}.x`.slice(0, 255);
      assert.equal(name.length, 255);
      const client = await openClient("127.0.0.1", server.port);
      client.send([5, 1, 0, 5, 1, 0, 3, 255, ...new TextEncoder().encode(name), 0, 80]);
      const reply = await client.readToEnd(15_000);
      assert.deepEqual([...reply.subarray(0, 2)], [5, 0]);
      assert.equal(reply[3], 4, "REP 04 host unreachable");
      assert.equal(reply.length, 12);
      await stillServes();
    });

    test("a client that stalls mid-handshake is closed after the handshake timeout", { skip }, async () => {
      const client = await openClient("127.0.0.1", server.port);
      client.send([5, 1, 0, 5, 1]);
      assert.deepEqual([...await client.read(2)], [5, 0]);
      assert.equal(await client.closedWithin(5000), true);
      await server.waitForOutput(/handshake failed: Handshake not completed within 1 s/);
      await stillServes();
    });

    test("a SOCKS4 CONNECT to a closed port gets VN 0 CD 5B", { skip }, async () => {
      const client = await openClient("127.0.0.1", server.port);
      client.send([4, 1, 0, 1, 127, 0, 0, 1, 0x75, 0x73, 0x65, 0x72, 0]);
      assert.deepEqual([...await client.readToEnd(5000)], [0, 0x5b, 0, 0, 0, 0, 0, 0]);
      await server.waitForOutput(/4-CON 127\.0\.0\.1:1 direct failed: connection_refused/);
      await stillServes();
    });

    test("a SOCKS5 CONNECT to a closed port gets REP 05", { skip }, async () => {
      const client = await openClient("127.0.0.1", server.port);
      client.send(socks5ConnectBytes("127.0.0.1", 1));
      assert.deepEqual([...await client.readToEnd(5000)], [5, 0, 5, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
      await stillServes();
    });
  });
}

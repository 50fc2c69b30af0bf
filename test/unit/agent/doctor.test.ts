/** The agent-path doctor against a real replayer input on loopback, and its checks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { StreamInput } from '../../../src/io/stream-input';
import { encodeHello, encodeStatus } from '../../../src/agent/stream-format';
import { runAgentDoctor } from '../../../src/doctor/agent-doctor';
import { checkAgentSources, checkClockSkew } from '../../../src/doctor/agent-checks';

function collect(): { out: NodeJS.WritableStream; text: () => string } {
  let s = '';
  const out = { write: (c: string) => ((s += c), true) } as unknown as NodeJS.WritableStream;
  return { out, text: () => s };
}

test('doctor --agent: the replayer answers with the agents it sees, their drops and clock skew', async () => {
  const si = new StreamInput(
    { kind: 'listen', host: '127.0.0.1', port: 0 },
    { secret: null, maxSlots: 16, log: { info: () => undefined, warn: () => undefined } },
  );
  await si.start({ packet: () => undefined, batchEnd: () => undefined });
  const port = si.address?.port ?? 0;
  const agent = net.connect({ host: '127.0.0.1', port });
  await new Promise((r) => agent.once('connect', r));
  agent.write(encodeHello({ flags: 0, littleEndian: true, agentId: 42, shard: 0, shards: 1, name: 'web1' }));
  const st = {
    nowMs: Date.now() - 2000,
    droppedFrames: 1,
    droppedPackets: 3,
    droppedData: 2,
    kernelDropped: 0,
    sentPackets: 9,
  };
  agent.write(encodeStatus(st, 0));
  for (let i = 0; i < 100 && si.sources()[0]?.lastStatusAt === undefined; i++)
    await new Promise((r) => setTimeout(r, 10));
  for (let i = 0; i < 100 && (si.sources()[0]?.lastStatusAt ?? 0) === 0; i++)
    await new Promise((r) => setTimeout(r, 10));
  const c = collect();
  const code = await runAgentDoctor(['--agent', `127.0.0.1:${port}`], c.out);
  agent.destroy();
  await si.stop();
  const text = c.text();
  assert.match(text, /\[ OK \] stream: replayer 127\.0\.0\.1:\d+ accepts agents/);
  assert.match(
    text,
    /\[WARN\] agent: slot 0: agent web1 .* connected, 0 packets; dropped 3 packets \(2 with payload\)/,
  );
  assert.match(text, /clock skew (19|20|21)\d\d ms/);
  assert.match(text, /\[ OK \] clock: replayer clock - this host's clock = -?\d+ ms/);
  assert.equal(code, 0);
  assert.equal(si.sources().length, 1, 'the doctor took no slot');
});

test('doctor --agent: no replayer is a failure with the fix', async () => {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  const c = collect();
  assert.equal(await runAgentDoctor(['--agent', `127.0.0.1:${port}`], c.out), 1);
  assert.match(c.text(), /\[FAIL\] stream: replayer 127\.0\.0\.1:\d+: .*ECONNREFUSED/);
});

test('agent checks: none seen is a warning; a clock skew over 50 ms is a warning', () => {
  assert.equal(checkAgentSources([])[0]?.verdict, 'warn');
  assert.equal(checkClockSkew(10, 2).verdict, 'ok');
  assert.equal(checkClockSkew(-80, 2).verdict, 'warn');
});

/** tcpcopy agent's command line. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentFilter, parseAgentArgs, AGENT_DEFAULT_PORT } from '../../../src/agent/agent-options';
import { parseStreamInput } from '../../../src/run/input';

test('agent: -x and --to parsed, defaults, the filter built from -x', () => {
  const c = parseAgentArgs(['-x', '80,198.18.0.1:443', '--to', '198.18.0.5:4000,198.18.0.6']);
  assert.deepEqual(c.ports, [
    { ip: null, port: 80 },
    { ip: '198.18.0.1', port: 443 },
  ]);
  assert.deepEqual(c.to, [
    { host: '198.18.0.5', port: 4000 },
    { host: '198.18.0.6', port: AGENT_DEFAULT_PORT },
  ]);
  assert.equal(c.device, 'any');
  assert.equal(c.bufferMB, 2);
  assert.equal(agentFilter(c.ports), 'tcp and (dst port 80 or (dst host 198.18.0.1 and dst port 443))');
});

test('agent: missing or bad options name the option and the form', () => {
  assert.throws(() => parseAgentArgs(['--to', 'h']), /-x is required/);
  assert.throws(() => parseAgentArgs(['-x', '80']), /--to is required/);
  assert.throws(() => parseAgentArgs(['-x', '80-1.2.3.4:5', '--to', 'h']), /-x 80-1.2.3.4:5: expected \[IP:\]PORT/);
  assert.throws(() => parseAgentArgs(['-x', '80', '--to', 'h:99999']), /--to h:99999/);
  assert.throws(() => parseAgentArgs(['-x', '80', '--to', 'h', '-i', 'a,b']), /one device/);
  assert.equal(parseAgentArgs(['-h']).help, true);
});

test('-i tcp://[HOST:]PORT and -i - are stream inputs; a bad tcp:// form is an error', () => {
  assert.deepEqual(parseStreamInput('tcp://36525'), { kind: 'listen', host: '0.0.0.0', port: 36525 });
  assert.deepEqual(parseStreamInput('tcp://198.18.0.5:4000'), { kind: 'listen', host: '198.18.0.5', port: 4000 });
  assert.deepEqual(parseStreamInput('-'), { kind: 'stdin' });
  assert.equal(parseStreamInput('eth0'), null);
  assert.throws(() => parseStreamInput('tcp://x:0'), /expected tcp:\/\/\[HOST:\]PORT/);
});

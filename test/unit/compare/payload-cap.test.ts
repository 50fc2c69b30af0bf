/**
 * The comparison's sessions ask for whole reply segments: the engine registers them with
 * the payload flag and the module's targetPayloadMax (65535), the channel turns that into cap
 * class 127; a module without targetPayloadMax asks for intercept's --payload-max (0). Module
 * files with a bad targetPayloadMax are refused at load.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Comparison } from '../../../src/compare/comparison';
import { compareConfig } from '../../../src/compare/config';
import { compareModule } from '../../../src/compare/module';
import { buildRules } from '../../../src/compare/rules';
import { ReplayEngine } from '../../../src/core/engine';
import { engineConfig } from '../../../src/core/engine-config';
import { newSegment, parseIpv4 } from '../../../src/core/wire/segment';
import { emitIpv4Tcp, newTcpRepr } from '../../../src/core/wire/build';
import { parseIpv4Tcp } from '../../../src/core/wire/decode';
import type { ProtocolModule } from '../../../src/modules/api';
import { moduleShapeError } from '../../../src/run/module-load';

function added(module: ProtocolModule): [boolean, number][] {
  const got: [boolean, number][] = [];
  const e = new ReplayEngine(
    engineConfig([{ onlineIp: 0, onlinePort: 80, targetIp: parseIpv4('198.18.0.2'), targetPort: 8080 }], { module }),
    {
      packet: () => {},
      clientAdded: (_ip, _port, _tip, _tport, payload, max) => got.push([payload, max]),
      clientRemoved: () => {},
    },
  );
  const r = newTcpRepr();
  r.srcIp = parseIpv4('198.18.1.2');
  r.dstIp = parseIpv4('198.18.0.1');
  r.srcPort = 40000;
  r.dstPort = 80;
  r.seq = 1000;
  r.flags = 0x02;
  r.window = 65535;
  r.ttl = 64;
  r.wscale = -1;
  const b = Buffer.alloc(100);
  const len = emitIpv4Tcp(r, null, 0, 0, b, 0);
  const seg = newSegment();
  assert.equal(parseIpv4Tcp(b, 0, len, seg), 'ok');
  e.onClientPacket(seg, 0);
  e.forEachClient((_ip, _port, _tip, _tport, payload, max) => got.push([payload, max]));
  return got;
}

test('compare sessions register with the payload flag and 65535 bytes per reply (CLIENT_ADD and re-registration)', () => {
  const m = compareModule(new Comparison(compareConfig('http', buildRules()), () => {}));
  assert.deepEqual(added(m), [
    [true, 65535],
    [true, 65535],
  ]);
  const plain: ProtocolModule = { ...m, targetPayloadMax: undefined } as unknown as ProtocolModule;
  delete (plain as { targetPayloadMax?: number }).targetPayloadMax;
  assert.deepEqual(added(plain), [
    [true, 0],
    [true, 0],
  ]);
  assert.deepEqual(added({ ...m, wantsTargetPayload: false }), [
    [false, 0],
    [false, 0],
  ]);
});

test('a module file with a bad targetPayloadMax is refused with the field named', () => {
  const m = compareModule(new Comparison(compareConfig('http', buildRules()), () => {}));
  assert.equal(moduleShapeError(m), null);
  for (const bad of [-1, 70000, 1.5, '1024'])
    assert.match(
      moduleShapeError({ ...m, targetPayloadMax: bad }) ?? '',
      /targetPayloadMax must be an integer 0\.\.65535/,
    );
});

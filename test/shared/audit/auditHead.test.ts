/**
 * Signed audit chain heads: what is signed (domain, signer, seq, hash, time), the `audit_head`
 * message's validation, and the throttle that bounds how often a peer's heads are recorded.
 */
import assert from 'node:assert/strict';
import { keyId, signHead, verifyHead } from '../../../shared/audit/auditHead.js';
import { HeadThrottle } from '../../../shared/audit/headThrottle.js';
import { parseMessage } from '../../../shared/protocol/messages.js';
import { generateIdentity } from '../../../shared/secure/identity.js';

describe('audit chain heads (shared/audit)', () => {
  const key = generateIdentity();
  const head = { seq: 12, hash: 'e3'.repeat(32) };

  it('verifies only for the signer, seq, hash and time it was signed for', () => {
    const s = signHead(key.privateKey, { kind: 'coordinator' }, head);
    assert.ok(verifyHead(key.publicKey, { kind: 'coordinator' }, s));
    assert.ok(!verifyHead(key.publicKey, { kind: 'site', site: 'coordinator' }, s), 'a site cannot pass its head off as the coordinator');
    assert.ok(!verifyHead(key.publicKey, { kind: 'coordinator' }, { ...s, seq: 13 }));
    assert.ok(!verifyHead(key.publicKey, { kind: 'coordinator' }, { ...s, hash: '00'.repeat(32) }));
    assert.ok(!verifyHead(key.publicKey, { kind: 'coordinator' }, { ...s, at: new Date(0).toISOString() }));
    assert.ok(!verifyHead(generateIdentity().publicKey, { kind: 'coordinator' }, s));
    const site = signHead(key.privateKey, { kind: 'site', site: 'a' }, head);
    assert.ok(verifyHead(key.publicKey, { kind: 'site', site: 'a' }, site));
    assert.ok(!verifyHead(key.publicKey, { kind: 'site', site: 'b' }, site));
    assert.match(keyId(key.publicKeyB64), /^sha256:[0-9a-f]{16}$/);
  });

  it('audit_head messages are validated strictly', () => {
    const s = signHead(key.privateKey, { kind: 'coordinator' }, head);
    assert.deepEqual(parseMessage({ type: 'audit_head', ...s }), { type: 'audit_head', ...s });
    assert.doesNotThrow(() => parseMessage({ type: 'audit_head', ...s, seq: 0 }));
    const bad: Record<string, unknown>[] = [
      { signature: undefined },
      { signature: 'x'.repeat(200) },
      { hash: 'E3'.repeat(32) },
      { seq: -1 },
      { seq: 1.5 },
      { seq: 2 ** 60 },
      { at: 'yesterday' },
      { at: `${s.at}${'0'.repeat(100)}` },
      { extra: 1 },
    ];
    for (const b of bad) assert.throws(() => parseMessage(JSON.parse(JSON.stringify({ type: 'audit_head', ...s, ...b }))), /invalid audit_head message/, JSON.stringify(b));
  });

  it('records at most one head per sender per interval, the newest waiting one after it', async () => {
    const recorded: [string, number][] = [];
    const t = new HeadThrottle<number>(100, (s, v) => recorded.push([s, v]));
    for (let i = 1; i <= 50; i++) t.offer('a', i);
    t.offer('b', 1);
    assert.deepEqual(recorded, [['a', 1], ['b', 1]]);
    await new Promise((r) => setTimeout(r, 150));
    assert.deepEqual(recorded, [['a', 1], ['b', 1], ['a', 50]]);
    t.offer('a', 51);
    t.flush();
    assert.deepEqual(recorded.at(-1), ['a', 51]);
  });
});

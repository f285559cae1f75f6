/**
 * A scripted site against a real in-process coordinator: enrolled with a join token and
 * certified by the test's admin key, as a real site is, then connected over WebSocket; it
 * answers the handshake itself and hands every other message to the test's `onMessage`.
 */
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import WebSocket from 'ws';
import type { RunningCoordinator } from '../../coordinator/coordinatorServer.js';
import { ApiAdminTarget } from '../../cli/admin/adminTarget.js';
import { addSite, certifySite } from '../../cli/admin/federationAdmin.js';
import { MessageChannel } from '../../shared/protocol/messageChannel.js';
import { AUTH_DOMAIN, PROTOCOL_VERSIONS, type Message } from '../../shared/protocol/messages.js';
import { generateIdentity, signMessage } from '../../shared/secure/identity.js';
import { generateEncryptionKey } from '../../shared/secure/ckks/siteEncryptionKey.js';
import type { AdminKey } from '../../shared/secure/trust/adminKey.js';
import { siteKeysFingerprint } from '../../shared/secure/trust/fingerprint.js';

export type SiteSend = (m: Message, payload?: Uint8Array) => void;

export type OnSiteMessage = (m: Message, payload: Buffer, send: SiteSend) => void;

/** Enrols and certifies `name` once; `connect` opens an authenticated session, as often as asked. */
export async function enrolScriptedSite(c: Pick<RunningCoordinator, 'url' | 'adminToken'>, admin: AdminKey, name: string): Promise<{ connect: (onMessage: OnSiteMessage) => WebSocket }> {
  const target = new ApiAdminTarget({ url: c.url, token: c.adminToken });
  const { token } = await addSite(target, name, admin);
  const identity = generateIdentity();
  const enc = generateEncryptionKey();
  const res = await fetch(new URL('/v1/enroll', c.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: token.split('.')[0], publicKey: identity.publicKeyB64, encryptionKey: enc.publicB64 }) });
  assert.equal(res.status, 200);
  await certifySite(target, admin, name, { fingerprint: siteKeysFingerprint(identity.publicKeyB64, enc.publicB64) });
  return { connect: (onMessage) => connectAs(c, name, identity.privateKey, onMessage) };
}

export async function connectScriptedSite(c: Pick<RunningCoordinator, 'url' | 'adminToken'>, admin: AdminKey, name: string, onMessage: OnSiteMessage): Promise<WebSocket> {
  return (await enrolScriptedSite(c, admin, name)).connect(onMessage);
}

function connectAs(c: Pick<RunningCoordinator, 'url'>, name: string, privateKey: KeyObject, onMessage: OnSiteMessage): WebSocket {
  const ws = new WebSocket(`${c.url.replace('http', 'ws')}/v1/edge`);
  const ch = new MessageChannel(ws);
  const send: SiteSend = (m, payload) => void ch.send(m, payload).catch(() => {});
  ch.onMessage = (m, payload) => {
    if (m.type === 'challenge') send({ type: 'auth', signature: signMessage(privateKey, AUTH_DOMAIN, name, m.nonce, 'none') });
    else onMessage(m, payload, send);
  };
  ws.on('open', () => send({ type: 'hello', site: name, versions: [...PROTOCOL_VERSIONS] }));
  ws.on('error', () => {});
  return ws;
}

/**
 * Which coordinator URLs an edge may use. Over the hospital network and the internet the
 * coordinator must be reached over TLS (https/wss): plain http/ws is accepted only to loopback,
 * unless the operator says `--insecure-transport` (warned at every start).
 */
import { isIP } from 'node:net';
import { UsageError } from '../../shared/errors.js';

export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}

/** Throws UsageError for a URL this edge must not use; returns a warning to log for an accepted insecure one. */
export function checkCoordinatorUrl(url: string, insecureTransport = false): { warning: string | null } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`coordinator URL "${url}" is not a URL (e.g. https://fl.example.org:8700)`);
  }
  if (u.protocol === 'https:' || u.protocol === 'wss:') return { warning: null };
  if (u.protocol !== 'http:' && u.protocol !== 'ws:') throw new UsageError(`coordinator URL "${url}" must be https:// (or http:// to loopback)`);
  if (isLoopbackHost(u.hostname)) return { warning: null };
  if (!insecureTransport) throw new UsageError(`refusing plain ${u.protocol.slice(0, -1)} to ${u.host}: updates, keys and models would cross the network without TLS; use https://, or --insecure-transport if you really mean it`);
  return { warning: `insecure transport: the coordinator at ${u.host} is reached without TLS (--insecure-transport); anyone on the network path can read and relay this site's traffic` };
}

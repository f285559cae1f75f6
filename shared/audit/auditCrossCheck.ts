/**
 * Cross-checking one side's audit log against the signed chain heads the other side holds
 * (auditHead.ts): the coordinator's log against the `coordinator_head.received` entries of a
 * site's log, and a site's log against the `site_head.received` entries the coordinator recorded
 * for it. A held head names a seq and the hash the log's owner signed for it; if the log now has
 * another hash at that seq, or no entry there, its owner rewrote or cut its history after
 * signing — even when the rewritten log's own chain verifies (a consistent rewrite re-hashes
 * every entry after the change). The head's signature is checked with the owner's public key
 * when it is known (by the key id recorded with the head), so the holder cannot have made it up.
 */
import type { KeyObject } from 'node:crypto';
import { verifyChain, type AuditEntry, type ChainReport } from './auditChain.js';
import { signerText, verifyHead, type HeadSigner, type SignedHead } from './auditHead.js';

/** A signed head as the other side recorded it. */
export interface HeldHead extends SignedHead {
  /** Whose head: `coordinator` or `site:<name>`. */
  signer: string;
  /** Key id of the signer's key (sha256:…), as recorded. */
  key: string;
  /** Where the holder recorded it: its entry's seq and time. */
  recordedSeq: number;
  recordedAt: string;
}

export interface HeadDisagreement {
  signer: string;
  seq: number;
  signedHash: string;
  /** The log's hash at that seq (null: the log has no entry there). */
  logHash: string | null;
  reason: string;
}

export interface CrossCheckReport {
  ok: boolean;
  /** Heads checked, and how many of them agree with the log. */
  heads: number;
  agreeing: number;
  /** Heads whose signature was checked and verifies / does not verify / could not be checked (unknown key). */
  signatures: { valid: number; invalid: number; unverified: number };
  disagreements: HeadDisagreement[];
  /** The checked log's own chain verification. */
  chain: Pick<ChainReport, 'ok' | 'lines' | 'verified' | 'head' | 'break'>;
}

/** The signed heads of others recorded in a log (`coordinator_head.received`, `site_head.received`). */
export function heldHeads(file: string, filter: (signer: string) => boolean = () => true): HeldHead[] {
  const out: HeldHead[] = [];
  verifyChain(file, (e) => {
    if (!e) return;
    const signer = e.action === 'coordinator_head.received' ? 'coordinator' : e.action === 'site_head.received' ? `site:${e.subject}` : null;
    if (!signer || !filter(signer)) return;
    const d = e.details;
    if (typeof d.seq !== 'number' || typeof d.hash !== 'string' || typeof d.at !== 'string' || typeof d.signature !== 'string') return;
    out.push({ signer, seq: d.seq, hash: d.hash, at: d.at, signature: d.signature, key: typeof d.key === 'string' ? d.key : '', recordedSeq: e.seq, recordedAt: e.at });
  });
  return out;
}

/** Parses a heads file (`fedmed audit heads --json`): a JSON array of held heads. */
export function parseHeldHeads(text: string): HeldHead[] {
  const v = JSON.parse(text) as unknown;
  const list = Array.isArray(v) ? v : v && typeof v === 'object' && Array.isArray((v as { heads?: unknown }).heads) ? (v as { heads: unknown[] }).heads : null;
  if (!list) throw new Error('a heads file is a JSON array of heads (or {heads: [...]}), as "fedmed audit heads --json" prints');
  return list.map((h, i) => {
    const o = h as Record<string, unknown>;
    if (typeof o.signer !== 'string' || !Number.isSafeInteger(o.seq) || typeof o.hash !== 'string' || typeof o.at !== 'string' || typeof o.signature !== 'string') throw new Error(`head ${i + 1} of the heads file lacks signer, seq, hash, at or signature`);
    return { signer: o.signer, seq: o.seq as number, hash: o.hash, at: o.at, signature: o.signature, key: typeof o.key === 'string' ? o.key : '', recordedSeq: Number(o.recordedSeq ?? 0), recordedAt: String(o.recordedAt ?? '') };
  });
}

function parseSigner(s: string): HeadSigner {
  return s === 'coordinator' ? { kind: 'coordinator' } : { kind: 'site', site: s.replace(/^site:/, '') };
}

/**
 * Checks the log at `file` against heads its owner signed. `keys`: the owner's public keys by
 * key id (to check the heads' signatures). A head with a bad signature is not evidence against
 * the log: it is counted as invalid and not compared.
 */
export function crossCheck(file: string, heads: HeldHead[], keys: Map<string, KeyObject>): CrossCheckReport {
  const wanted = new Map<number, HeldHead[]>();
  const signatures = { valid: 0, invalid: 0, unverified: 0 };
  for (const h of heads) {
    const key = keys.get(h.key);
    if (key) {
      if (!verifyHead(key, parseSigner(h.signer), h)) {
        signatures.invalid++;
        continue;
      }
      signatures.valid++;
    } else signatures.unverified++;
    wanted.set(h.seq, [...(wanted.get(h.seq) ?? []), h]);
  }
  const at = new Map<number, AuditEntry>();
  let last = 0;
  const chain = verifyChain(file, (e) => {
    if (!e) return;
    last = Math.max(last, e.seq);
    if (wanted.has(e.seq) && !at.has(e.seq)) at.set(e.seq, e);
  });
  const disagreements: HeadDisagreement[] = [];
  let agreeing = 0;
  for (const [seq, hs] of [...wanted].sort((a, b) => a[0] - b[0])) {
    for (const h of hs) {
      if (seq === 0) {
        agreeing++; // (the empty log's head: nothing to compare)
        continue;
      }
      const e = at.get(seq);
      if (e && e.hash === h.hash) {
        agreeing++;
        continue;
      }
      disagreements.push({
        signer: h.signer,
        seq,
        signedHash: h.hash,
        logHash: e?.hash ?? null,
        reason: e
          ? `${signerText(parseSigner(h.signer))} signed hash ${h.hash.slice(0, 16)}… for seq ${seq} at ${h.at}, but its log now has ${e.hash.slice(0, 16)}… there: its history up to seq ${seq} was rewritten after it signed that head`
          : `${signerText(parseSigner(h.signer))} signed a head at seq ${seq} at ${h.at}, but its log has no entry ${seq} (it ends at seq ${last}): its history was cut after it signed that head`,
      });
    }
  }
  return { ok: disagreements.length === 0 && signatures.invalid === 0, heads: heads.length, agreeing, signatures, disagreements, chain: { ok: chain.ok, lines: chain.lines, verified: chain.verified, head: chain.head, ...(chain.break ? { break: chain.break } : {}) } };
}

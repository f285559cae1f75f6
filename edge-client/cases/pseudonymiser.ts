/**
 * Keyed-hash pseudonyms for DICOM UIDs. A case is known by HMAC-SHA256(site key, UID), never by
 * the UID itself: the same instance always gets the same pseudonym at this site (duplicates
 * collapse, a PACS re-send is recognised), while nobody without the key — the coordinator, a
 * log reader, another site — can link it back to the hospital's records or to the same study
 * at another hospital. The 32-byte key is created on first use in STATE_DIR/cases/pseudonym.key
 * (owner-only); losing it only means re-received instances get new pseudonyms.
 *
 * The same key makes a case's `pixelHash`: HMAC-SHA256(key, "pixels\0" + the hex SHA-256 of the
 * first frame's pixel bytes, `pixelBytes` in dicomDecoder.ts), 64 hex digits. It tells the same
 * image re-sent under new UIDs, and lets a test check the edge's decoded pixels against dcmtk's,
 * while a plain pixel hash could link the case to a copy of the image outside the hospital.
 * (The SHA-256 is taken in the decode worker, which does not hold the key; HMAC over that digest
 * is as collision-resistant and as unlinkable as HMAC over the bytes.)
 */
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../../shared/atomicFile.js';
import { FedmedError } from '../../shared/errors.js';
import type { InstanceUids } from '../dicom/dicomTypes.js';

const KEY_BYTES = 32;

export interface CasePseudonyms {
  /** The case id: from the SOP Instance UID. */
  id: string;
  study: string;
  series: string;
  /** The keyed pixel hash, when the decoder gave a pixel digest. */
  pixels?: string;
}

export class Pseudonymiser {
  private constructor(private readonly key: Buffer) {}

  /** Loads the site's key from `file`, creating it (owner-only) when absent. */
  static open(file: string): Pseudonymiser {
    if (!existsSync(file)) {
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      writeFileAtomic(file, randomBytes(KEY_BYTES), 0o600);
    }
    const key = readFileSync(file);
    if (key.length !== KEY_BYTES) throw new FedmedError('CASES_KEY_INVALID', `${file} is not a pseudonym key (${key.length} bytes, expected ${KEY_BYTES}); restore it from a backup, or move it away to start new pseudonyms`);
    return new Pseudonymiser(key);
  }

  /** 128-bit pseudonym (32 hex digits) of one UID; `kind` keeps SOP, study and series pseudonyms apart. */
  pseudonym(kind: 'sop' | 'study' | 'series', uid: string): string {
    return createHmac('sha256', this.key).update(`${kind}\0${uid}`).digest('hex').slice(0, 32);
  }

  /** HMAC-SHA256 (64 hex digits) of the first frame's pixel digest (the hex SHA-256 of `pixelBytes`). */
  pixelHash(pixelSha256: string): string {
    return createHmac('sha256', this.key).update(`pixels\0${pixelSha256}`).digest('hex');
  }

  of(uids: InstanceUids): CasePseudonyms {
    const p: CasePseudonyms = { id: this.pseudonym('sop', uids.sopInstanceUid), study: this.pseudonym('study', uids.studyInstanceUid), series: this.pseudonym('series', uids.seriesInstanceUid) };
    if (uids.pixelSha256 !== undefined) p.pixels = this.pixelHash(uids.pixelSha256);
    return p;
  }
}

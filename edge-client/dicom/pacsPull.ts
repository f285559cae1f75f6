/**
 * Pulls new instances from the PACS over DICOMweb, on an interval: QIDO-RS lists instances
 * (`GET {base}/instances?…`, paged with limit/offset), the ones not pulled before are fetched
 * one by one with WADO-RS in their stored transfer syntax (`transfer-syntax=*`: a PACS without a
 * JPEG 2000 codec cannot transcode), split with the multipart parser and handed to `onInstance`.
 *
 * Delivery is at least once and never twice after success: an instance is recorded as pulled
 * only after `onInstance` resolved for it, and the record survives restarts in `stateFile`
 * (written as tmp + fsync + rename). The state holds no PHI in clear: each SOP Instance UID is
 * kept only as `rememberAs(uid)`, a keyed pseudonym (the edge uses the case's own: an unkeyed
 * hash would let anyone holding a UID test whether this site pulled it); the watermark is the latest StudyDate seen
 * (a day, not linked to any patient), used only when `lookbackDays` asks to narrow the query.
 *
 * One failing instance never stops the pull (it is retried next interval); a PACS that is down
 * is one logged warning per attempt, and the next interval retries.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { DicomError, errorMessage } from '../../shared/errors.js';
import { parseMultipartRelated } from './multipartRelated.js';

export interface PacsPullLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface PacsPullOptions {
  /** The DICOMweb root, e.g. http://127.0.0.1:8042/dicom-web (no trailing slash needed). */
  baseUrl: string;
  /** Extra QIDO-RS matching keys, e.g. { ModalitiesInStudy: 'CR' }. */
  query?: Record<string, string>;
  intervalMs: number;
  /** JSON state: hashes of pulled SOP Instance UIDs and the StudyDate watermark. */
  stateFile: string;
  /** The keyed pseudonym a pulled SOP Instance UID is remembered by (never the UID itself). */
  rememberAs: (sopInstanceUid: string) => string;
  onInstance: (p10: Uint8Array, source: { kind: 'pacs'; url: string }) => Promise<void>;
  log: PacsPullLog;
  fetch?: typeof fetch;
  /**
   * When set, QIDO asks only for StudyDate >= (latest StudyDate seen − this many days). Null
   * (default): every pull lists everything matching `query` (correct for late-arriving priors).
   */
  lookbackDays?: number | null;
  /** QIDO page size (default 500). */
  pageSize?: number;
  /** Per-request timeout (default 60 s). */
  requestTimeoutMs?: number;
  /** An instance answer larger than this is refused (default 1 GiB). */
  maxInstanceBytes?: number;
}

export interface PullResult {
  /** Instances the QIDO query listed. */
  found: number;
  /** Fetched and handed over successfully (now recorded). */
  fetched: number;
  /** Already pulled before. */
  skipped: number;
  /** Instances (or the listing itself) that failed; retried next time. */
  failed: number;
  /** Why the listing failed (PACS down, bad answer), when it did. */
  error?: string;
}

interface PullState {
  version: 2;
  /** sha256 hex of each pulled SOP Instance UID (salted with a fixed label). */
  pulled: string[];
  watermark: { studyDate: string | null };
  lastPullAt: string | null;
}

interface ListedInstance {
  study: string;
  series: string;
  instance: string;
  studyDate: string | null;
}

const WADO_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*';
const INCLUDE_FIELDS = ['0020000D', '0020000E', '00080018', '00080020'];
const UID_RE = /^[0-9.]{1,64}$/;

export class PacsPull {
  private readonly base: string;
  private readonly fetchFn: typeof fetch;
  private readonly pulled: Set<string>;
  private watermark: string | null;
  private lastPullAt: string | null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<PullResult> | null = null;
  private stopped = true;
  private abort = new AbortController();
  private dirty = 0;

  constructor(private readonly o: PacsPullOptions) {
    if (!/^https?:\/\//.test(o.baseUrl)) throw new DicomError(`PACS URL "${o.baseUrl}" must start with http:// or https:// (the DICOMweb root, e.g. http://pacs:8042/dicom-web)`);
    if (!(o.intervalMs > 0)) throw new DicomError(`PACS pull interval must be positive (got ${o.intervalMs} ms)`);
    this.base = o.baseUrl.replace(/\/+$/, '');
    this.fetchFn = o.fetch ?? fetch;
    const state = readState(o.stateFile);
    this.pulled = new Set(state.pulled);
    this.watermark = state.watermark.studyDate;
    this.lastPullAt = state.lastPullAt;
  }

  /** How many instances are recorded as pulled. */
  get pulledCount(): number {
    return this.pulled.size;
  }

  /** Pulls now and then every intervalMs (never two pulls at once). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.abort = new AbortController();
    const tick = async (): Promise<void> => {
      if (this.stopped) return;
      await this.pullOnce();
      if (!this.stopped) this.timer = setTimeout(() => void tick(), this.o.intervalMs);
    };
    void tick();
  }

  /** Stops the interval and aborts a pull in flight; resolves when it has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.abort.abort(new DicomError('PACS pull stopped'));
    await this.running?.catch(() => undefined);
    this.abort = new AbortController(); // a later pullOnce() works again
  }

  /** One pull: list, fetch what is new, record it. Never throws; failures are counted and logged. */
  pullOnce(): Promise<PullResult> {
    this.running ??= this.pull().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pull(): Promise<PullResult> {
    const result: PullResult = { found: 0, fetched: 0, skipped: 0, failed: 0 };
    let listed: ListedInstance[];
    try {
      listed = await this.list();
    } catch (err) {
      result.failed = 1;
      result.error = errorMessage(err);
      this.o.log.warn({ url: this.base, reason: result.error }, 'PACS pull: cannot list instances (is the PACS up and the DICOMweb URL right?); retrying next interval');
      return result;
    }
    result.found = listed.length;
    let maxDate = this.watermark;
    for (const item of listed) {
      if (this.abort.signal.aborted) break;
      const key = this.o.rememberAs(item.instance);
      if (this.pulled.has(key)) {
        result.skipped++;
        continue;
      }
      try {
        await this.fetchInstance(item);
        this.pulled.add(key);
        result.fetched++;
        if (item.studyDate && (!maxDate || item.studyDate > maxDate)) maxDate = item.studyDate;
        if (++this.dirty >= 50) this.save(maxDate);
      } catch (err) {
        result.failed++;
        this.o.log.warn({ url: this.base, reason: errorMessage(err).slice(0, 300) }, 'PACS pull: one instance failed; it is retried next interval');
      }
    }
    this.lastPullAt = new Date().toISOString();
    try {
      this.save(maxDate);
    } catch (err) {
      this.o.log.warn({ stateFile: this.o.stateFile, reason: errorMessage(err) }, 'PACS pull: cannot write the state file; instances may be pulled again after a restart');
    }
    if (result.fetched || result.failed) this.o.log.info({ url: this.base, ...result }, 'PACS pull done');
    return result;
  }

  private signal(): AbortSignal {
    return AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.o.requestTimeoutMs ?? 60_000)]);
  }

  /** QIDO-RS, all pages. */
  private async list(): Promise<ListedInstance[]> {
    const pageSize = this.o.pageSize ?? 500;
    const out: ListedInstance[] = [];
    for (let offset = 0; ; offset += pageSize) {
      const q = new URLSearchParams(this.o.query ?? {});
      const lookback = this.o.lookbackDays;
      if (lookback != null && this.watermark && !q.has('StudyDate')) q.set('StudyDate', `${shiftDate(this.watermark, -lookback)}-`);
      for (const f of INCLUDE_FIELDS) q.append('includefield', f);
      q.set('limit', String(pageSize));
      q.set('offset', String(offset));
      const res = await this.fetchFn(`${this.base}/instances?${q}`, { headers: { accept: 'application/dicom+json' }, signal: this.signal() });
      if (res.status === 204) break;
      if (!res.ok) throw new DicomError(`QIDO-RS answered ${res.status} ${res.statusText}`);
      const text = await res.text();
      const page: unknown = text.trim() ? JSON.parse(text) : [];
      if (!Array.isArray(page)) throw new DicomError('QIDO-RS answer is not a JSON array');
      for (const entry of page) {
        const study = jsonString(entry, '0020000D');
        const series = jsonString(entry, '0020000E');
        const instance = jsonString(entry, '00080018');
        if (!study || !series || !instance || !UID_RE.test(study) || !UID_RE.test(series) || !UID_RE.test(instance)) {
          throw new DicomError('a QIDO-RS result lacks a valid Study, Series or SOP Instance UID');
        }
        const date = jsonString(entry, '00080020');
        out.push({ study, series, instance, studyDate: date && /^\d{8}$/.test(date) ? date : null });
      }
      if (page.length < pageSize) break;
    }
    return out;
  }

  /** WADO-RS one instance, in its stored syntax; every part to onInstance. */
  private async fetchInstance(item: ListedInstance): Promise<void> {
    const url = `${this.base}/studies/${item.study}/series/${item.series}/instances/${item.instance}`;
    const res = await this.fetchFn(url, { headers: { accept: WADO_ACCEPT }, signal: this.signal() });
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      throw new DicomError(`WADO-RS answered ${res.status} ${res.statusText}${res.status === 406 || res.status === 500 ? ' (the PACS may not be able to send the stored transfer syntax)' : ''}`);
    }
    const max = this.o.maxInstanceBytes ?? 1024 ** 3;
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > max) {
      await res.body?.cancel().catch(() => undefined);
      throw new DicomError(`WADO-RS answer of ${declared} bytes exceeds the limit of ${max}`);
    }
    const body = new Uint8Array(await res.arrayBuffer());
    const parts = parseMultipartRelated(body, res.headers.get('content-type') ?? '', { maxBytes: max, maxParts: 1000 });
    if (!parts.length) throw new DicomError('WADO-RS answer has no parts');
    for (const p of parts) {
      const type = (p.headers['content-type'] ?? 'application/dicom').split(';')[0].trim().toLowerCase();
      if (type !== 'application/dicom') throw new DicomError(`WADO-RS part has Content-Type ${type}, expected application/dicom`);
      await this.o.onInstance(p.body, { kind: 'pacs', url: this.base });
    }
  }

  private save(maxDate: string | null): void {
    this.watermark = maxDate;
    this.dirty = 0;
    const state: PullState = { version: 2, pulled: [...this.pulled], watermark: { studyDate: maxDate }, lastPullAt: this.lastPullAt };
    writeAtomically(this.o.stateFile, `${JSON.stringify(state)}\n`);
  }
}

function readState(file: string): PullState {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 2, pulled: [], watermark: { studyDate: null }, lastPullAt: null };
    throw new DicomError(`cannot read the PACS pull state ${file}: ${errorMessage(err)}`);
  }
  let s: Partial<PullState>;
  try {
    s = JSON.parse(text) as Partial<PullState>;
  } catch {
    throw new DicomError(`the PACS pull state ${file} is not JSON: fix or delete it (deleting it makes the next pull fetch everything again; the case store drops duplicates)`);
  }
  // Version 1 kept unkeyed hashes, which cannot be turned into keyed ones: its instances are
  // fetched once more (the case store keeps one case per SOP instance) and remembered keyed.
  const version = (s as { version?: unknown } | null)?.version;
  const pulled = version === 1 ? [] : s?.pulled;
  if ((version !== 1 && version !== 2) || !Array.isArray(pulled) || !pulled.every((h) => typeof h === 'string' && /^[0-9a-f]{32,64}$/.test(h))) {
    throw new DicomError(`the PACS pull state ${file} is not a version 2 state (pulled: a list of keyed hex pseudonyms): fix or delete it (deleting it makes the next pull fetch everything again; the case store drops duplicates)`);
  }
  const date = s.watermark?.studyDate;
  return { version: 2, pulled, watermark: { studyDate: typeof date === 'string' && /^\d{8}$/.test(date) ? date : null }, lastPullAt: typeof s.lastPullAt === 'string' ? s.lastPullAt : null };
}

function writeAtomically(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/** A DICOM JSON attribute's first value, as a string. */
function jsonString(entry: unknown, tag: string): string | null {
  if (!entry || typeof entry !== 'object') return null;
  const attr = (entry as Record<string, unknown>)[tag];
  const value = attr && typeof attr === 'object' ? (attr as { Value?: unknown }).Value : undefined;
  const first: unknown = Array.isArray(value) ? value[0] : undefined;
  return typeof first === 'string' ? first.trim() : typeof first === 'number' ? String(first) : null;
}

/** YYYYMMDD shifted by whole days. */
function shiftDate(yyyymmdd: string, days: number): string {
  const d = new Date(Date.UTC(Number(yyyymmdd.slice(0, 4)), Number(yyyymmdd.slice(4, 6)) - 1, Number(yyyymmdd.slice(6, 8))));
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10).replace(/-/g, '');
}

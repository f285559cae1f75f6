/**
 * DICOM at the edge (`npm run bench -- dicom`), three measurements with their floors, same run:
 *
 * 1. C-STORE ingest: 500 small synthetic CR images (256×256, 16-bit, explicit VR little endian,
 *    written by test/helpers/dicomWriter.ts, fresh UIDs each repetition) sent by dcmtk `storescu`
 *    (TCP_NODELAY=1, one association, all 500 files) to the edge's SCP in a child process wired as
 *    the edge wires it (bench/dicomChild.ts: CaseStore + DecodePool + DicomIngest + DicomIntake);
 *    each C-STORE is answered after its case is stored, so storescu's wall time is the ingest
 *    time. Floor: the same files by the same storescu to dcmtk's `storescp --ignore` (in a
 *    loopback-only network namespace, since storescp 3.6.7 cannot bind one address).
 * 2. JPEG 2000 burst under inference load: the child also serves cnn-28 (/v1/infer); closed-loop
 *    clients in this process POST single-image JSON requests; after a steady phase, 20 copies of
 *    ../shared/data/dicom_samples/RG3_J2KR.dcm (1760×1760 JPEG 2000 lossless; UIDs byte-patched to
 *    fresh ones of the same length) arrive by C-STORE. Inference p99 during the burst vs the
 *    steady phase just before, per decode-pool configuration (before/after renicing the workers).
 * 3. DICOMweb pull: a 200-image series uploaded to a throwaway Orthanc (test/helpers/orthancServer.ts)
 *    pulled by PacsPull into a fresh case store (DecodePool + DicomIngest); floors: one WADO-RS
 *    retrieve of the whole series with fetch (bytes only), and QIDO + the same 200 per-instance
 *    WADO-RS requests PacsPull makes (bytes only).
 * Medians over repetitions after a warm-up (disclosed in the JSON); what cannot run here is skipped
 * with the reason.
 */
import { spawn, spawnSync, fork, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { closeSync, fdatasyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import dicomParser from 'dicom-parser';
import { SeededRng } from '../shared/random/seededRng.js';
import { CaseStore } from '../edge-client/cases/caseStore.js';
import { DecodePool } from '../edge-client/dicom/decodePool.js';
import { DicomIngest } from '../edge-client/dicom/dicomIngest.js';
import type { InstanceMetadata } from '../edge-client/dicom/dicomTypes.js';
import { modelInput } from '../edge-client/dicom/modelInput.js';
import { PacsPull } from '../edge-client/dicom/pacsPull.js';
import { zooModel } from '../models/zoo.js';
import { newUid, writeCrImage } from '../test/helpers/dicomWriter.js';
import { orthancUnavailable, startOrthanc } from '../test/helpers/orthancServer.js';
import { sharedDataFile } from '../test/helpers/paths.js';
import { median, percentile, round } from './stats.js';

export interface DicomBenchOptions {
  repeats: number;
  /** Images in the C-STORE ingest run (goal 1: 500). */
  images: number;
  /** Images in the JPEG 2000 burst (goal 2: 20), over `burstAssociations` concurrent storescu. */
  burstImages: number;
  burstAssociations: number;
  /** Closed-loop inference clients. */
  connections: number;
  steadySeconds: number;
  /** Images in the pulled series (goal 3: 200). */
  seriesImages: number;
  /** Only these parts (ingest, burst, pull); default all. */
  parts?: string[];
}

function progress(msg: string): void {
  process.stderr.write(`[bench dicom ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

const CHILD = fileURLToPath(new URL('./dicomChild.js', import.meta.url));
const SMALL = { rows: 256, columns: 256 };
const J2K_SAMPLE = 'dicom_samples/RG3_J2KR.dcm';
const GOALS = { ingestImagesPerSecond: 250, burstP99OverSteady: 2 };

type Skip = { goal: string; reason: string };

export async function benchDicom(o: DicomBenchOptions): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = { loadAverageAtStart: loadavg().map((l) => round(l, 2)) };
  const skipped: Skip[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'fedmed-bench-dicom-'));
  try {
    const dcmtk = spawnSync('storescu', ['--version']).status === 0;
    if (!dcmtk) skipped.push({ goal: 'cstoreIngest, j2kBurst', reason: 'dcmtk (storescu/storescp) is not installed: apt-get install dcmtk' });
    const want = (part: string): boolean => !o.parts || o.parts.includes(part);
    // One failing part is reported in the JSON; the others still run.
    const attempt = async (key: string, f: () => Promise<Record<string, unknown>>): Promise<void> => {
      const t = performance.now();
      progress(`${key}…`);
      try {
        out[key] = await f();
      } catch (err) {
        out[key] = { error: (err as Error).stack ?? String(err) };
      }
      progress(`${key} done in ${Math.round((performance.now() - t) / 1000)} s`);
    };
    if (dcmtk && want('ingest')) await attempt('cstoreIngest', () => benchIngest(dir, o, skipped));
    const j2k = sharedDataFile(J2K_SAMPLE);
    if (!j2k) skipped.push({ goal: 'j2kBurst', reason: `../shared/data/${J2K_SAMPLE} is absent (the 1760×1760 JPEG 2000 sample): the burst needs it` });
    if (dcmtk && j2k && want('burst')) await attempt('j2kBurstUnderInference', () => benchBurst(dir, j2k, o));
    const why = orthancUnavailable();
    if (why) skipped.push({ goal: 'dicomwebPull', reason: why });
    else if (want('pull')) await attempt('dicomwebPull', () => benchPull(dir, o));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  out.loadAverageAtEnd = loadavg().map((l) => round(l, 2));
  out.skipped = skipped;
  return out;
}

// ---------- synthetic images ----------

function writeSmallImages(dir: string, n: number, seed: number): { files: string[]; bytes: number } {
  mkdirSync(dir, { recursive: true });
  const rng = new SeededRng(seed);
  const study = newUid();
  const series = newUid();
  const files: string[] = [];
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const pixels = new Uint16Array(SMALL.rows * SMALL.columns);
    const base = Math.floor(rng.next() * 2000);
    for (let p = 0; p < pixels.length; p++) pixels[p] = base + ((p % SMALL.columns) * 8 + Math.floor(p / SMALL.columns) * 4 + Math.floor(rng.next() * 64));
    const p10 = writeCrImage({ ...SMALL, pixels, patientName: `BENCH^${seed}`, patientId: `B${seed}`, studyInstanceUid: study, seriesInstanceUid: series, window: { center: 2000, width: 4000 } });
    const f = join(dir, `img${String(i).padStart(4, '0')}.dcm`);
    writeFileSync(f, p10);
    files.push(f);
    bytes += p10.length;
  }
  return { files, bytes };
}

/** A UID of the same length as `uid`: its last digits replaced by random ones (no component gets a leading zero). */
function sameLengthUid(uid: string): string {
  const chars = [...uid];
  const from = Math.max(chars.indexOf('.') + 1, chars.length - 24);
  for (let i = from; i < chars.length; i++) {
    if (chars[i] === '.') continue;
    const first = chars[i - 1] === '.';
    chars[i] = String(first ? 1 + randomInt(9) : randomInt(10));
  }
  return chars.join('');
}

/** Copies of a Part 10 file with fresh SOP Instance (and given Study/Series) UIDs patched in place: same lengths, so every offset and group length stays valid. */
function patchedCopies(sample: Uint8Array, n: number, dir: string, tag: string): string[] {
  mkdirSync(dir, { recursive: true });
  const ds = dicomParser.parseDicom(sample);
  const value = (t: string): { offset: number; length: number; uid: string } => {
    const e = ds.elements[t];
    if (!e) throw new Error(`the JPEG 2000 sample has no ${t}`);
    return { offset: e.dataOffset, length: e.length, uid: ds.string(t)! };
  };
  const [meta, sop, study, series] = ['x00020003', 'x00080018', 'x0020000d', 'x0020000e'].map(value);
  const put = (buf: Uint8Array, at: { offset: number; length: number }, uid: string): void => {
    const bytes = Buffer.alloc(at.length, 0); // UI values are padded with NUL to even length
    bytes.write(uid, 'latin1');
    buf.set(bytes, at.offset);
  };
  const studyUid = sameLengthUid(study.uid);
  const seriesUid = sameLengthUid(series.uid);
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    const copy = new Uint8Array(sample);
    const sopUid = sameLengthUid(sop.uid);
    put(copy, meta, sopUid);
    put(copy, sop, sopUid);
    put(copy, study, studyUid);
    put(copy, series, seriesUid);
    const f = join(dir, `${tag}-${i}.dcm`);
    writeFileSync(f, copy);
    files.push(f);
  }
  // The copies must parse and carry the new UIDs.
  const check = dicomParser.parseDicom(new Uint8Array(readFileSync(files[0])));
  if (check.string('x00080018') === sop.uid || check.string('x00020003') !== check.string('x00080018') || check.string('x0020000d') !== studyUid) throw new Error('patching the JPEG 2000 sample UIDs failed');
  return files;
}

// ---------- processes ----------

function run(cmd: string, args: string[]): Promise<{ code: number | null; out: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { ...process.env, TCP_NODELAY: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
    child.stderr.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
    child.on('close', (code) => resolve({ code, out, ms: performance.now() - started }));
  });
}

async function storescu(port: number, files: string[], extra: string[] = [], netns?: string, aec = 'FEDMED'): Promise<number> {
  const args = [...extra, '-aet', 'BENCHSCU', '-aec', aec, '127.0.0.1', String(port), ...files];
  const r = netns ? await run('ip', ['netns', 'exec', netns, 'storescu', ...args]) : await run('storescu', args);
  if (r.code !== 0) throw new Error(`storescu exited ${r.code}: ${r.out.slice(-1500)}`);
  return r.ms;
}

interface EdgeChild {
  child: ChildProcess;
  scpPort: number;
  inferPort: number | null;
  stats(): Promise<{ cases: number; received: number; failed: number; maxIngestMs: number }>;
  stop(): Promise<void>;
}

async function startChild(config: Record<string, unknown>): Promise<EdgeChild> {
  const child = fork(CHILD, [JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = JSON.parse((await message(child, 'ready:')).slice(6)) as { scpPort: number; inferPort: number | null };
  return {
    child,
    ...ready,
    stats: async () => {
      const m = message(child, 'stats:');
      child.send('stats');
      return JSON.parse((await m).slice(6)) as { cases: number; received: number; failed: number; maxIngestMs: number };
    },
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.disconnect();
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    },
  };
}

function message(child: ChildProcess, prefix: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null): void => reject(new Error(`DICOM bench child exited (${code}) before "${prefix}"`));
    const on = (m: unknown): void => {
      if (typeof m !== 'string' || !m.startsWith(prefix)) return;
      child.off('message', on);
      child.off('exit', onExit);
      resolve(m);
    };
    child.on('message', on);
    child.once('exit', onExit);
  });
}

/** dcmtk's storescp in a fresh network namespace with only loopback (storescp has no bind-address option). */
async function startFloorScp(dir: string): Promise<{ netns: string; port: number; stop(): Promise<void> }> {
  const netns = `fedmed-bench-${randomBytes(4).toString('hex')}`;
  const ip = (...args: string[]): void => {
    const r = spawnSync('ip', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  };
  ip('netns', 'add', netns);
  ip('netns', 'exec', netns, 'ip', 'link', 'set', 'lo', 'up');
  const port = 11112;
  const scp = spawn('ip', ['netns', 'exec', netns, 'storescp', '--ignore', '-aet', 'FLOOR', String(port)], { cwd: dir, stdio: 'ignore', env: { ...process.env, TCP_NODELAY: '1' } });
  // Ready when it answers C-ECHO.
  for (let i = 0; ; i++) {
    if (spawnSync('ip', ['netns', 'exec', netns, 'echoscu', '-aec', 'FLOOR', '127.0.0.1', String(port)]).status === 0) break;
    if (i > 50) throw new Error('storescp did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    netns,
    port,
    stop: async () => {
      if (scp.exitCode === null && scp.signalCode === null) {
        const gone = new Promise((r) => scp.once('exit', r));
        scp.kill('SIGKILL'); // (ip netns exec execs storescp: this pid is storescp's)
        await gone;
      }
      spawnSync('ip', ['netns', 'delete', netns]);
    },
  };
}

// ---------- goal 1 ----------

async function benchIngest(dir: string, o: DicomBenchOptions, skipped: Skip[]): Promise<Record<string, unknown>> {
  const state = join(dir, 'ingest-state');
  const edge = await startChild({ stateDir: state, infer: false });
  let floor: Awaited<ReturnType<typeof startFloorScp>> | null = null;
  try {
    floor = await startFloorScp(dir);
  } catch (err) {
    skipped.push({ goal: 'cstoreIngest floor', reason: `cannot run storescp in a loopback-only network namespace: ${(err as Error).message}` });
  }
  const ingestMs: number[] = [];
  const floorMs: number[] = [];
  let imageBytes = 0;
  let warmup: Record<string, number> = {};
  try {
    for (let rep = 0; rep <= o.repeats; rep++) {
      const set = writeSmallImages(join(dir, `small-${rep}`), o.images, 100 + rep);
      imageBytes = set.bytes / o.images;
      const before = await edge.stats();
      // Alternate which runs first, so neither always meets a cold page cache.
      const f = async (): Promise<number | null> => (floor ? storescu(floor.port, set.files, [], floor.netns, 'FLOOR') : null);
      const e = (): Promise<number> => storescu(edge.scpPort, set.files);
      let fm: number | null;
      let em: number;
      if (rep % 2 === 0) {
        fm = await f();
        em = await e();
      } else {
        em = await e();
        fm = await f();
      }
      const after = await edge.stats();
      if (after.cases - before.cases !== o.images) throw new Error(`C-STORE ingest: ${after.cases - before.cases} new cases for ${o.images} images`);
      if (rep === 0) warmup = { ingestMs: round(em, 1), ...(fm !== null ? { floorMs: round(fm, 1) } : {}) };
      else {
        ingestMs.push(em);
        if (fm !== null) floorMs.push(fm);
      }
      rmSync(join(dir, `small-${rep}`), { recursive: true, force: true });
    }
  } finally {
    await edge.stop();
    await floor?.stop();
  }
  const rate = (ms: number): number => round((o.images * 1000) / ms, 0);
  // Where the time goes: the same storescu runs against the SCP alone, then SCP + decode pool (no case store), then the case store's put in-process.
  const profile: Record<string, unknown> = {};
  for (const stage of ['scp', 'decode'] as const) {
    const child = await startChild({ stateDir: join(dir, `profile-${stage}`), stage });
    try {
      const runs: number[] = [];
      for (let rep = 0; rep <= o.repeats; rep++) {
        const set = writeSmallImages(join(dir, `p-${stage}-${rep}`), o.images, 300 + rep);
        const before = await child.stats();
        const ms = await storescu(child.scpPort, set.files);
        const after = await child.stats();
        if (after.received - before.received !== o.images || after.failed) throw new Error(`profile ${stage}: ${after.received - before.received} received, ${after.failed} failed`);
        if (rep > 0) runs.push(ms);
        rmSync(join(dir, `p-${stage}-${rep}`), { recursive: true, force: true });
      }
      profile[stage === 'scp' ? 'scpOnly' : 'scpPlusDecodePool'] = { what: stage === 'scp' ? 'the SCP answering each C-STORE at once (onInstance a no-op)' : 'SCP + DecodePool.decodeAndPreprocess (no case store)', runsMs: runs.map((m) => round(m, 1)), imagesPerSecond: rate(median(runs)) };
    } finally {
      await child.stop();
    }
  }
  profile.caseStorePut = await profilePut(join(dir, 'profile-put'), o.images);
  const ingest = { runsMs: ingestMs.map((m) => round(m, 1)), medianMs: round(median(ingestMs), 1), imagesPerSecond: rate(median(ingestMs)) };
  const fl = floorMs.length ? { runsMs: floorMs.map((m) => round(m, 1)), medianMs: round(median(floorMs), 1), imagesPerSecond: rate(median(floorMs)) } : null;
  return {
    images: o.images,
    image: `${SMALL.rows}x${SMALL.columns} 16-bit CR, explicit VR little endian, ${Math.round(imageBytes)} bytes`,
    sender: 'storescu (dcmtk), TCP_NODELAY=1, one association, all files; wall time incl. process start',
    edge: 'child process: CaseStore (SQLite WAL, synchronous=FULL) + DecodePool (2 workers) + DicomIngest + DicomIntake SCP on 127.0.0.1; preprocessed for cnn-28 (28x28x1)',
    floor: 'storescp --ignore (dcmtk) in a loopback-only network namespace, storescu via ip netns exec',
    repeats: o.repeats,
    warmup: { runs: 1, ...warmup },
    ingest,
    floorRun: fl,
    profile,
    ingestOverFloorRate: fl ? round(ingest.imagesPerSecond / fl.imagesPerSecond, 3) : null,
    goalImagesPerSecond: GOALS.ingestImagesPerSecond,
    goalMet: ingest.imagesPerSecond >= GOALS.ingestImagesPerSecond,
  };
}

/** CaseStore.put of `n` preprocessed 28x28 cases in-process (SQLite WAL, synchronous=FULL: one fsync per case), and this disk's fdatasync alone. */
async function profilePut(state: string, n: number): Promise<Record<string, unknown>> {
  const cases = await CaseStore.open(state);
  const input = modelInput(zooModel('cnn-28', { numClasses: 2 }));
  const times: number[] = [];
  const metadata: InstanceMetadata = { modality: 'CR', bodyPart: 'CHEST', manufacturer: 'FEDMED TEST', manufacturerModel: 'SYNTH-1', sopClassUid: '1.2.840.10008.5.1.4.1.1.1', transferSyntax: '1.2.840.10008.1.2.1', rows: 256, columns: 256, bitsAllocated: 16, bitsStored: 16, pixelRepresentation: 0, photometric: 'MONOCHROME2', samplesPerPixel: 1, frames: 1 };
  try {
    for (let i = 0; i < n; i++) {
      const uid = newUid();
      const t = performance.now();
      cases.put(cases.pseudonyms.of({ sopInstanceUid: uid, studyInstanceUid: uid, seriesInstanceUid: uid }), {
        metadata,
        source: { kind: 'scp', callingAet: 'BENCH' },
        input: new Float32Array(28 * 28),
        inputShape: input.shape,
        inputSpecHash: input.hash,
      });
      times.push(performance.now() - t);
    }
  } finally {
    cases.close();
  }
  const f = join(state, 'fsync-probe');
  const fd = openSync(f, 'w');
  const syncs: number[] = [];
  try {
    for (let i = 0; i < 200; i++) {
      writeSync(fd, Buffer.alloc(4096, i), 0, 4096, 0);
      const t = performance.now();
      fdatasyncSync(fd);
      syncs.push(performance.now() - t);
    }
  } finally {
    closeSync(fd);
  }
  return { what: `CaseStore.put of ${n} 28x28 cases in-process (pseudonyms included), and a 4 KiB write + fdatasync on the same disk`, putMedianMs: round(median(times), 3), putP99Ms: round(percentile(times, 99), 3), putsPerSecond: round(1000 / median(times), 0), fdatasyncMedianMs: round(median(syncs), 3) };
}

// ---------- goal 2 ----------

interface Sample {
  start: number;
  ms: number;
  ok: boolean;
}

/** `connections` closed-loop clients POSTing /v1/infer on keep-alive sockets; stop() returns every request's start and latency. */
function startLoad(port: number, connections: number, body: string): { stop(): Promise<Sample[]> } {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const samples: Sample[] = [];
  let stopping = false;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const start = performance.now();
      const req = request({ host: '127.0.0.1', port, path: '/v1/infer', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.resume();
        res.on('end', () => {
          samples.push({ start, ms: performance.now() - start, ok: res.statusCode === 200 });
          resolve();
        });
      });
      req.on('error', () => {
        samples.push({ start, ms: performance.now() - start, ok: false });
        resolve();
      });
      req.end(body);
    });
  const loops = Array.from({ length: connections }, async () => {
    while (!stopping) await one();
  });
  return {
    stop: async () => {
      stopping = true;
      await Promise.all(loops);
      agent.destroy();
      return samples;
    },
  };
}

function window(samples: Sample[], from: number, to: number): { requests: number; failed: number; requestsPerSecond: number; p50Ms: number; p99Ms: number; maxMs: number } {
  const w = samples.filter((s) => s.start >= from && s.start < to);
  const ms = w.map((s) => s.ms);
  return { requests: w.length, failed: w.filter((s) => !s.ok).length, requestsPerSecond: round((w.length * 1000) / (to - from), 0), p50Ms: round(percentile(ms, 50), 2), p99Ms: round(percentile(ms, 99), 2), maxMs: round(Math.max(...ms), 1) };
}

interface BurstConfig {
  name: string;
  decodeWorkers: number;
  decodePriority: number;
}

async function benchBurst(dir: string, sampleFile: string, o: DicomBenchOptions): Promise<Record<string, unknown>> {
  const sample = new Uint8Array(readFileSync(sampleFile));
  const rng = new SeededRng(7);
  const body = JSON.stringify({ input: Array.from({ length: 784 }, () => Math.round((Math.floor(rng.next() * 256) / 255) * 1e4) / 1e4) });
  const configs: BurstConfig[] = [
    { name: 'before_2workers_nice0', decodeWorkers: 2, decodePriority: 0 },
    { name: 'after_2workers_nice19', decodeWorkers: 2, decodePriority: 19 },
    { name: 'after_1worker_nice19', decodeWorkers: 1, decodePriority: 19 },
  ];
  const out: Record<string, unknown> = {
    image: `${J2K_SAMPLE} (1760x1760 JPEG 2000 lossless, ${sample.length} bytes), UIDs byte-patched to fresh ones of the same length`,
    burst: `${o.burstImages} images over ${o.burstAssociations} concurrent storescu associations (TCP_NODELAY=1, -R -xv)`,
    load: `${o.connections} closed-loop keep-alive HTTP clients in the parent process, POST /v1/infer JSON (784 values), cnn-28 served in the same process as the SCP (dynamic batching 32 / 1 ms)`,
    windows: `steady: the ${o.steadySeconds} s before the burst; burst: requests started between the first storescu spawn and the last storescu exit`,
    warmup: '2 s of load, then 2 JPEG 2000 images (one per association, so both decode workers have loaded their codecs), then 1 s of load; not measured',
    repeats: o.repeats,
  };
  for (const c of configs) {
    const runs: Record<string, unknown>[] = [];
    for (let rep = 0; rep < o.repeats; rep++) {
      const edge = await startChild({ stateDir: join(dir, `burst-${c.name}-${rep}`), decodeWorkers: c.decodeWorkers, decodePriority: c.decodePriority, infer: true });
      try {
        const warm = patchedCopies(sample, 2, join(dir, 'j2k'), `warm-${c.name}-${rep}`);
        const files = patchedCopies(sample, o.burstImages, join(dir, 'j2k'), `burst-${c.name}-${rep}`);
        const load = startLoad(edge.inferPort!, o.connections, body);
        await sleep(2000);
        await Promise.all(warm.map((f) => storescu(edge.scpPort, [f], ['-R', '-xv'])));
        await sleep(1000);
        const steadyFrom = performance.now();
        await sleep(o.steadySeconds * 1000);
        const burstFrom = performance.now();
        const per = Math.ceil(files.length / o.burstAssociations);
        const groups = Array.from({ length: o.burstAssociations }, (_, i) => files.slice(i * per, (i + 1) * per)).filter((g) => g.length);
        await Promise.all(groups.map((g) => storescu(edge.scpPort, g, ['-R', '-xv'])));
        const burstTo = performance.now();
        await sleep(500);
        const samples = await load.stop();
        const stats = await edge.stats();
        if (stats.cases !== o.burstImages + warm.length) throw new Error(`burst: ${stats.cases} cases for ${o.burstImages + warm.length} images`);
        const steady = window(samples, steadyFrom, burstFrom);
        const burst = window(samples, burstFrom, burstTo);
        runs.push({ burstMs: round(burstTo - burstFrom, 0), maxIngestMs: stats.maxIngestMs, steady, burst, p99Ratio: round(burst.p99Ms / steady.p99Ms, 2) });
      } finally {
        await edge.stop();
        rmSync(join(dir, 'j2k'), { recursive: true, force: true });
      }
    }
    const steadyP99 = median(runs.map((r) => (r.steady as { p99Ms: number }).p99Ms));
    const burstP99 = median(runs.map((r) => (r.burst as { p99Ms: number }).p99Ms));
    out[c.name] = {
      decodeWorkers: c.decodeWorkers,
      decodeWorkerNice: c.decodePriority,
      medianSteadyP99Ms: round(steadyP99, 2),
      medianBurstP99Ms: round(burstP99, 2),
      p99Ratio: round(burstP99 / steadyP99, 2),
      medianSteadyRequestsPerSecond: round(median(runs.map((r) => (r.steady as { requestsPerSecond: number }).requestsPerSecond)), 0),
      medianBurstRequestsPerSecond: round(median(runs.map((r) => (r.burst as { requestsPerSecond: number }).requestsPerSecond)), 0),
      medianBurstMs: round(median(runs.map((r) => r.burstMs as number)), 0),
      goalMet: burstP99 / steadyP99 <= GOALS.burstP99OverSteady,
      runs,
    };
  }
  out.goalP99Ratio = GOALS.burstP99OverSteady;
  return out;
}

// ---------- goal 3 ----------

async function benchPull(dir: string, o: DicomBenchOptions): Promise<Record<string, unknown>> {
  const orthanc = await startOrthanc();
  try {
    const set = writeSmallImages(join(dir, 'series'), o.seriesImages, 900);
    const first = dicomParser.parseDicom(new Uint8Array(readFileSync(set.files[0])));
    const study = first.string('x0020000d')!.replace(/[\0 ]+$/, '');
    const series = first.string('x0020000e')!.replace(/[\0 ]+$/, '');
    for (const f of set.files) await orthanc.upload(new Uint8Array(readFileSync(f)));
    const base = orthanc.dicomWebUrl;
    const accept = 'multipart/related; type="application/dicom"; transfer-syntax=*';
    const spec = zooModel('cnn-28', { numClasses: 2 });
    const seriesFloor = async (): Promise<{ ms: number; bytes: number }> => {
      const t = performance.now();
      const r = await fetch(`${base}/studies/${study}/series/${series}`, { headers: { accept } });
      if (!r.ok) throw new Error(`WADO-RS series ${study}/${series}: ${r.status} ${(await r.text()).slice(0, 300)}`);
      const bytes = (await r.arrayBuffer()).byteLength;
      return { ms: performance.now() - t, bytes };
    };
    const instanceFloor = async (): Promise<{ ms: number; bytes: number }> => {
      const t = performance.now();
      const q = await fetch(`${base}/instances?SeriesInstanceUID=${series}&includefield=0020000D&includefield=0020000E&includefield=00080018&limit=500`, { headers: { accept: 'application/dicom+json' } });
      const list = (await q.json()) as Record<string, { Value: string[] }>[];
      let bytes = 0;
      for (const e of list) {
        const r = await fetch(`${base}/studies/${e['0020000D'].Value[0]}/series/${e['0020000E'].Value[0]}/instances/${e['00080018'].Value[0]}`, { headers: { accept } });
        bytes += (await r.arrayBuffer()).byteLength;
      }
      if (list.length !== o.seriesImages) throw new Error(`QIDO listed ${list.length} instances`);
      return { ms: performance.now() - t, bytes };
    };
    const pull = async (rep: number): Promise<{ ms: number; fetched: number }> => {
      const state = join(dir, `pull-${rep}`);
      const cases = await CaseStore.open(state);
      const pool = new DecodePool({});
      const input = modelInput(spec);
      const ingest = new DicomIngest({ cases, pool, modelInput: () => input, keepOriginals: false, log: () => {} });
      const quiet = { info: () => {}, warn: (obj: object, msg: string) => console.error(msg, obj) };
      const p = new PacsPull({ baseUrl: base, query: { SeriesInstanceUID: series }, intervalMs: 3600_000, stateFile: join(state, 'cases', 'pacs-pull.json'), rememberAs: (uid) => cases.pseudonyms.pseudonym('sop', uid), onInstance: async (p10, source) => void (await ingest.ingest(p10, source)), log: quiet });
      try {
        const t = performance.now();
        const r = await p.pullOnce();
        const ms = performance.now() - t;
        if (r.fetched !== o.seriesImages || cases.stats().cases !== o.seriesImages) throw new Error(`PACS pull fetched ${r.fetched} (${JSON.stringify(r)}), ${cases.stats().cases} cases`);
        return { ms, fetched: r.fetched };
      } finally {
        await pool.close();
        cases.close();
        rmSync(state, { recursive: true, force: true });
      }
    };
    const warm = { pullMs: round((await pull(-1)).ms, 0), seriesFloorMs: round((await seriesFloor()).ms, 0), instanceFloorMs: round((await instanceFloor()).ms, 0) };
    const pulls: number[] = [];
    const sf: number[] = [];
    const inf: number[] = [];
    let bytes = 0;
    for (let rep = 0; rep < o.repeats; rep++) {
      pulls.push((await pull(rep)).ms);
      const s = await seriesFloor();
      sf.push(s.ms);
      bytes = s.bytes;
      inf.push((await instanceFloor()).ms);
    }
    const rate = (ms: number): number => round((o.seriesImages * 1000) / ms, 0);
    const pullRate = rate(median(pulls));
    return {
      images: o.seriesImages,
      image: `${SMALL.rows}x${SMALL.columns} 16-bit CR, explicit VR little endian, one series`,
      pacs: 'Orthanc + orthanc-dicomweb in a loopback-only network namespace, reached through the test helper\'s Unix-socket bridge (127.0.0.1)',
      path: 'PacsPull.pullOnce (QIDO-RS, then one WADO-RS request per instance, transfer-syntax=*) → DicomIngest (DecodePool, 2 workers) → CaseStore (fresh each repetition)',
      repeats: o.repeats,
      warmup: { runs: 1, ...warm },
      pull: { runsMs: pulls.map((m) => round(m, 0)), medianMs: round(median(pulls), 0), imagesPerSecond: pullRate },
      floorSeriesRetrieve: { what: 'one WADO-RS GET of the series (multipart, bytes only, fetch)', bytes, runsMs: sf.map((m) => round(m, 0)), medianMs: round(median(sf), 0), imagesPerSecond: rate(median(sf)) },
      floorPerInstanceRetrieve: { what: 'QIDO-RS + the same 200 per-instance WADO-RS GETs PacsPull makes (bytes only, fetch)', runsMs: inf.map((m) => round(m, 0)), medianMs: round(median(inf), 0), imagesPerSecond: rate(median(inf)) },
      pullOverSeriesFloorRate: round(pullRate / rate(median(sf)), 3),
      pullOverPerInstanceFloorRate: round(pullRate / rate(median(inf)), 3),
    };
  } finally {
    await orthanc.stop();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

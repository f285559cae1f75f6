/**
 * `fedmed demo`: a whole federation on this machine, started the way a real one is. In a
 * temporary folder the demo plays every role in turn, each step through the same CLI processes
 * and admin functions real people use:
 *
 *   federation admin   makes the admin key, certifies the coordinator, creates the sites (join
 *                      tokens) and certifies each site's keys after checking the fingerprint
 *                      its enrolment printed (cli/admin/federationAdmin.ts); under CKKS also
 *                      makes and grants the key set
 *   coordinator op     `fedmed coordinator start` (a child process on 127.0.0.1)
 *   hospital IT        `fedmed edge enroll`, `edge policy init` (then releases noised DP
 *                      metrics, so the deployment gate can judge DP versions), `edge token
 *                      create` for the inference service, `edge start` — one child per site,
 *                      each with its own seeded non-IID synthetic images (demoSites.ts)
 *   researcher         creates the experiment (demoExperiment.ts), runs the rounds, reads ε
 *   clinician          calls each site's inference service and sees which version answered
 *
 * It ends with each site's accuracy on its own test split before and after, and the dashboard
 * URL with a sign-in token. With `exit` it stops everything and returns; otherwise it keeps the
 * federation running until SIGINT/SIGTERM. Any failure names the step and shows the tail of the
 * failing child's log; every child process is stopped on every path out.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiAdminTarget } from '../cli/admin/adminTarget.js';
import { addSite, certifyCoordinator, certifySite } from '../cli/admin/federationAdmin.js';
import { api } from '../cli/apiClient.js';
import { loadMedmnistNpz } from '../edge-client/data/medmnistLoader.js';
import type { Dataset } from '../edge-client/data/dataset.js';
import { createAdminKeyFile } from '../shared/secure/trust/adminKey.js';
import { showFingerprint } from '../shared/secure/trust/fingerprint.js';
import { versionAccuracies, type ModelSource } from './demoAccuracy.js';
import { DEMO_DP, demoExperimentConfig, type DemoSecurity } from './demoExperiment.js';
import { DemoOutput } from './demoOutput.js';
import { DemoFailure, DemoProcesses, lastJsonLine, type DemoChild } from './demoProcesses.js';
import { demoSiteProfiles, writeDemoSiteData, type DemoSiteProfile } from './demoSites.js';

export interface DemoOptions {
  rounds: number;
  sites: number;
  dp: boolean;
  security: DemoSecurity;
  /** Stop and return once done (CI); otherwise run until a signal. */
  exit: boolean;
  /** Coordinator port; undefined: 8700 if free, else any free port. */
  port?: number;
  /** Write the machine-readable summary here. */
  jsonFile?: string;
  /** Keep the temporary folder (keys, logs, data) after the demo ends. */
  keep: boolean;
  tty: boolean;
}

export interface DemoSummary {
  ok: boolean;
  root: string;
  coordinatorUrl: string;
  dashboardUrl: string;
  dashboardToken: string;
  experiment: string;
  security: DemoSecurity;
  privacy: { mode: string; clip: number; noiseMultiplier: number; delta: number; epsilon: number | null } | null;
  rounds: { round: number; status: string; versionId: string | null; accuracy: number | null; seconds: number; deployment: string }[];
  initialVersion: string;
  finalVersion: string;
  deployedVersion: string | null;
  sites: { name: string; pid: number; servePort: number; classBalance: number[]; intensityShift: number; examples: { train: number; val: number; test: number }; initialAccuracy: number; finalAccuracy: number; active: string | null; inference: { label: number; predicted: number; probability: number; version: string }[]; refusedByPolicy: string | null }[];
  processes: { name: string; pid: number }[];
  seconds: number;
}

const CLASSES = 3;
const EXAMPLES_PER_SITE = 500;
const poll = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function preferredPort(port: number): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(0));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(port)));
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** Waits until `check` gives a value; a timeout is a failure naming `what` (with `child`'s log tail). */
async function waitFor<T>(what: string, check: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs: number, child?: DemoChild): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > until) throw new DemoFailure(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`, child?.tail() ?? '', child?.logFile ?? null);
    await poll(250);
  }
}

interface SiteRun {
  profile: DemoSiteProfile;
  stateDir: string;
  dataFile: string;
  servePort: number;
  clinicianToken: string;
  split: { train: number; val: number; test: number };
  test: Dataset;
  proc?: DemoChild;
}

interface RoundView {
  round: number;
  status: string;
  reason: string | null;
  versionId: string | null;
  evalMetrics: { accuracy: number } | null;
  sites: { site: string; phase: string; status: string; reason?: string }[];
  timings: Record<string, number>;
}

interface DeploymentView {
  current: string | null;
  log: { action: string; version: string | null; reason?: string }[];
  sites: { site: string; active: string | null; lastReport: { version: string; status: string; reason?: string } | null }[];
}

/** Runs the demo; resolves with the process exit code (0 done or stopped by the user after it finished, 1 failed, 130/143 interrupted). */
export async function runDemo(o: DemoOptions): Promise<number> {
  const out = new DemoOutput(o.tty);
  const root = mkdtempSync(join(tmpdir(), 'fedmed-demo-'));
  for (const d of ['admin', 'logs', 'data', 'sites']) mkdirSync(join(root, d));
  const procs = new DemoProcesses(join(root, 'logs'));

  // Whatever happens first: the demo's steps end (or throw), a long-running child dies, or a signal.
  let settle!: (r: { kind: 'failure'; failure: DemoFailure } | { kind: 'signal'; signal: NodeJS.Signals }) => void;
  const stopped = new Promise<{ kind: 'failure'; failure: DemoFailure } | { kind: 'signal'; signal: NodeJS.Signals }>((r) => (settle = r));
  procs.onUnexpectedExit((failure) => settle({ kind: 'failure', failure }));
  const onSignal = (signal: NodeJS.Signals) => () => settle({ kind: 'signal', signal });
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, onSignal(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);

  const steps = (async (): Promise<DemoSummary> => {
    out.step(`fedmed demo: ${o.sites} hospitals, ${o.rounds} rounds, security ${o.security}, ${o.dp ? 'differential privacy on' : 'no differential privacy'}; working folder ${root}`);

    // --- federation admin: the trust anchor (fedmed federation init) ---
    const admin = createAdminKeyFile(join(root, 'admin', 'admin-key.pem'));
    out.step(`admin: federation admin key made (fingerprint ${showFingerprint(admin.fingerprint)})`);

    // --- coordinator operator ---
    const port = o.port ?? (await preferredPort(8700));
    const dataDir = join(root, 'coordinator');
    const coord = procs.spawn('coordinator', ['coordinator', 'start', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', String(port), '--log-level', 'warn'], { longRunning: true });
    // Meanwhile: each hospital's data (its own class balance and scanner).
    const profiles = demoSiteProfiles(o.sites, CLASSES, EXAMPLES_PER_SITE);
    const sites: SiteRun[] = [];
    for (const p of profiles) {
      const dataFile = join(root, 'data', `${p.name}.npz`);
      const w = writeDemoSiteData(p, dataFile);
      sites.push({ profile: p, stateDir: join(root, 'sites', p.name), dataFile, servePort: 0, clinicianToken: '', split: w.split, test: loadMedmnistNpz(dataFile).test });
    }
    out.step(`data: ${sites.map((s) => `${s.profile.name} ${s.split.train + s.split.val + s.split.test} images (classes ${s.profile.classBalance.map((b) => `${Math.round(b * 100)}%`).join('/')}, scanner shift ${s.profile.scanner.intensityShift >= 0 ? '+' : ''}${s.profile.scanner.intensityShift})`).join('; ')}`);
    const listening = await waitFor(
      'the coordinator to listen',
      () => {
        if (!coord.alive()) throw new DemoFailure(`the coordinator did not start${port ? ` (is port ${port} in use? choose one with --port)` : ''}`, coord.tail(), coord.logFile);
        const line = coord.output().split('\n').find((l) => l.includes('"event":"listening"'));
        return line ? (JSON.parse(line) as { url: string }) : null;
      },
      60_000,
      coord,
    );
    const url = listening.url;
    const adminToken = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    const target = { url, token: adminToken };
    const adminApi = new ApiAdminTarget(target);
    out.step(`coordinator: listening at ${url} (pid ${coord.pid})`);
    const cc = await certifyCoordinator(adminApi, admin);
    out.step(`admin: coordinator key ${showFingerprint(cc.fingerprint)} certified for ${cc.certificate.body.urls.join(', ')}`);

    // --- admission of each site: join token → enrolment at the hospital → certification ---
    await Promise.all(
      sites.map(async (s) => {
        const { token } = await addSite(adminApi, s.profile.name, admin);
        const enrolled = lastJsonLine<{ siteFingerprint: string }>(await procs.run(`enroll-${s.profile.name}`, `enrolment of ${s.profile.name}`, ['edge', 'enroll', '--coordinator', url, '--token', token, '--state-dir', s.stateDir, '--json']));
        await certifySite(adminApi, admin, s.profile.name, { fingerprint: enrolled.siteFingerprint });
        out.step(`${s.profile.name}: enrolled; admin certified its keys ${showFingerprint(enrolled.siteFingerprint)} after comparing the fingerprint`);
        // Hospital IT: the site policy (defaults; DP metrics released noised, so the gate can judge DP versions).
        await procs.run(`policy-${s.profile.name}`, `the site policy of ${s.profile.name}`, ['edge', 'policy', 'init', '--state-dir', s.stateDir]);
        const policyFile = join(s.stateDir, 'policy.json');
        const policy = JSON.parse(readFileSync(policyFile, 'utf8')) as { release: { dp: { metrics: string } } };
        policy.release.dp.metrics = 'noised';
        writeFileSync(policyFile, `${JSON.stringify(policy, null, 2)}\n`);
        s.clinicianToken = lastJsonLine<{ token: string }>(await procs.run(`token-${s.profile.name}`, `the inference token of ${s.profile.name}`, ['edge', 'token', 'create', '--state-dir', s.stateDir, '--role', 'clinician', '--name', 'demo-clinician', '--json'])).token;
        s.servePort = await freePort();
        s.proc = procs.spawn(`edge-${s.profile.name}`, ['edge', 'start', '--state-dir', s.stateDir, '--data', s.dataFile, '--serve-port', String(s.servePort)], { longRunning: true });
        out.step(`${s.profile.name}: edge started (pid ${s.proc.pid}), inference service on http://127.0.0.1:${s.servePort}/v1/infer`);
      }),
    );
    await waitFor(`all ${o.sites} edges to connect`, async () => (await api<{ name: string; online: boolean }[]>(target, 'GET', '/v1/sites')).filter((x) => x.online).length === o.sites, 90_000, sites.find((s) => s.proc?.alive())?.proc);
    out.step(`coordinator: all ${o.sites} sites online and authenticated`);

    let ckksSecretKeyFile: string | undefined;
    if (o.security === 'ckks') {
      const { createKeySet } = await import('../cli/federationKeys.js');
      ckksSecretKeyFile = join(root, 'admin', 'ckks-secret-key.json');
      const ks = await createKeySet(target, admin, ckksSecretKeyFile);
      out.step(`admin: CKKS key set ${ks.keySet} made and granted to ${ks.results.filter((r) => r.granted).length} sites`);
    }

    // --- researcher ---
    const config = demoExperimentConfig({ rounds: o.rounds, sites: o.sites, classes: CLASSES, dp: o.dp, security: o.security });
    const exp = await api<{ id: string }>(target, 'POST', '/v1/experiments', config);
    const privacyText = o.dp ? `, ${(config.privacy as { mode: string }).mode} DP (clip ${DEMO_DP.clip}, z ${DEMO_DP.noiseMultiplier}, δ ${DEMO_DP.delta})` : '';
    out.step(`researcher: experiment ${exp.id} created (cnn-28, ${CLASSES} classes, FedAvg, security ${o.security}${privacyText}, gated deployment)`);
    await api(target, 'POST', `/v1/experiments/${exp.id}/rounds`, { rounds: o.rounds });
    out.startRounds(o.rounds);
    const reported = new Map<number, DemoSummary['rounds'][number]>();
    const pending = new Map<number, number>();
    for (;;) {
      const { running } = await api<{ running: boolean }>(target, 'GET', `/v1/experiments/${exp.id}`);
      const rounds = await api<RoundView[]>(target, 'GET', `/v1/experiments/${exp.id}/rounds`);
      const dep = await api<DeploymentView>(target, 'GET', '/v1/deployment');
      for (const r of rounds) {
        if (r.status === 'running' || reported.has(r.round)) continue;
        if (r.status !== 'completed') {
          const siteReasons = r.sites.filter((x) => x.status !== 'done' && x.reason).map((x) => `${x.site}: ${x.reason}`);
          const edge = sites.find((s) => r.sites.some((x) => x.site === s.profile.name && x.status !== 'done'))?.proc;
          throw new DemoFailure(`round ${r.round} ${r.status}: ${r.reason ?? 'no reason given'}${siteReasons.length ? ` (${siteReasons.join('; ')})` : ''}`, edge?.tail() ?? coord.tail(), edge?.logFile ?? coord.logFile);
        }
        const held = dep.log.find((l) => l.action === 'held' && l.version === r.versionId);
        const published = dep.log.some((l) => l.action === 'publish' && l.version === r.versionId);
        const deployment = o.security === 'ckks' ? 'not deployed (CKKS: the coordinator cannot sign what it cannot read)' : published ? 'passed the gate: deployed to every site' : held ? `held by the gate (${held.reason ?? 'no reason'})` : 'gate pending';
        const rec = { round: r.round, status: r.status, versionId: r.versionId, accuracy: r.evalMetrics?.accuracy ?? null, seconds: (r.timings.totalMs ?? 0) / 1000, deployment };
        if (deployment === 'gate pending' && (pending.set(r.round, (pending.get(r.round) ?? 0) + 1).get(r.round) ?? 0) < 25) continue; // look again at the next poll
        reported.set(r.round, rec);
        out.step(`round ${r.round}/${o.rounds}: completed in ${rec.seconds.toFixed(1)} s, federated validation accuracy ${rec.accuracy === null ? 'withheld' : rec.accuracy.toFixed(3)}; version ${r.versionId?.slice(0, 12)} ${deployment}`);
      }
      out.updateRounds(reported.size, reported.size < o.rounds ? `round ${reported.size + 1} running` : 'done');
      if (!running && reported.size >= rounds.filter((r) => r.status !== 'running').length) {
        if (reported.size < o.rounds) throw new DemoFailure(`only ${reported.size} of ${o.rounds} rounds ran`, coord.tail(), coord.logFile);
        break;
      }
      await poll(400);
    }
    out.stopRounds();

    const privacy = o.dp ? await api<{ mode: string; clip: number; noiseMultiplier: number; delta: number; epsilon: number | null }>(target, 'GET', `/v1/experiments/${exp.id}/privacy`) : null;
    if (privacy) out.step(`privacy: ε = ${privacy.epsilon === null ? 'unknown' : privacy.epsilon.toFixed(2)} at δ = ${privacy.delta} after ${o.rounds} rounds (client-level, ${privacy.mode} noise z = ${privacy.noiseMultiplier}, clip ${privacy.clip})`);

    // --- deployment reaches every site's inference service ---
    const versions = await api<{ id: string; round: number }[]>(target, 'GET', `/v1/experiments/${exp.id}/versions`);
    const initialVersion = versions.find((v) => v.round === 0)!.id;
    const finalVersion = versions.reduce((a, b) => (b.round > a.round ? b : a)).id;
    let deployedVersion: string | null = null;
    const keptByPolicy = new Map<string, string>(); // site → why its own policy refused the deployed version
    if (o.security !== 'ckks') {
      const dep = await api<DeploymentView>(target, 'GET', '/v1/deployment');
      deployedVersion = dep.current;
      if (!deployedVersion) throw new DemoFailure(`no version passed the deployment gate: ${dep.log.filter((l) => l.action === 'held').map((l) => l.reason).pop() ?? 'no reason recorded'}`, coord.tail(), coord.logFile);
      // A site may refuse the version by its own policy (e.g. its holdout accuracy dropped more than
      // deployment.maxAccuracyDrop under DP noise): that is the site policy working, so the demo
      // reports it and that site keeps serving what it had. Any other refusal is a failure.
      await waitFor(
        `every site's inference service to run version ${deployedVersion.slice(0, 12)} (or refuse it by its own policy)`,
        async () => {
          const d = await api<DeploymentView>(target, 'GET', '/v1/deployment');
          keptByPolicy.clear();
          for (const s of sites) {
            const view = d.sites.find((x) => x.site === s.profile.name);
            const report = view?.lastReport;
            if (!view || !report || report.version !== deployedVersion || !/refus|fail/.test(report.status)) continue;
            if (!/site policy/.test(report.reason ?? '') || !view.active) throw new DemoFailure(`${s.profile.name} refused version ${deployedVersion!.slice(0, 12)}: ${report.reason ?? report.status}`, s.proc?.tail() ?? '');
            keptByPolicy.set(s.profile.name, report.reason ?? report.status);
          }
          return sites.every((s) => keptByPolicy.has(s.profile.name) || d.sites.find((x) => x.site === s.profile.name)?.active === deployedVersion);
        },
        60_000,
      );
      const serving = o.sites - keptByPolicy.size;
      out.step(`deployment: version ${deployedVersion.slice(0, 12)} (round ${versions.find((v) => v.id === deployedVersion)?.round}) verified, hot-swapped and serving on ${serving === o.sites ? 'all' : `${serving} of`} ${o.sites} sites`);
      for (const [site, reason] of keptByPolicy) out.step(`${site}: its own site policy refused version ${deployedVersion.slice(0, 12)} and kept serving the version it had (${reason})`);
    }

    // --- clinicians: a few requests to each site's inference service ---
    const inference = new Map<string, DemoSummary['sites'][number]['inference']>();
    for (const s of sites) {
      const answers: DemoSummary['sites'][number]['inference'] = [];
      if (o.security !== 'ckks') {
        for (let i = 0; i < 3; i++) {
          const input = Array.from(s.test.x.subarray(i * 784, (i + 1) * 784));
          const res = await fetch(`http://127.0.0.1:${s.servePort}/v1/infer`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${s.clinicianToken}` }, body: JSON.stringify({ input }) });
          const body = (await res.json()) as { probabilities: number[]; predictedClass: number; version: string; message?: string };
          if (res.status !== 200) throw new DemoFailure(`${s.profile.name}'s inference service answered ${res.status}: ${body.message ?? JSON.stringify(body)}`, s.proc?.tail() ?? '', s.proc?.logFile ?? null);
          answers.push({ label: s.test.y[i], predicted: body.predictedClass, probability: body.probabilities[body.predictedClass], version: body.version });
        }
        out.step(`${s.profile.name}: inference ${answers.map((a) => `[true ${a.label} → predicted ${a.predicted} (p ${a.probability.toFixed(2)})]`).join(' ')} by version ${answers[0].version.slice(0, 12)}`);
      }
      inference.set(s.profile.name, answers);
    }

    // --- how much better the federated model is, on each site's own test split ---
    const src: ModelSource = { target, experiment: exp.id, ckksSecretKeyFile };
    const tests = sites.map((s) => s.test);
    const initialAcc = await versionAccuracies(src, initialVersion, tests);
    const finalAcc = await versionAccuracies(src, finalVersion, tests);

    const dashboardToken = (await api<{ token: string }>(target, 'POST', '/v1/tokens', { role: 'researcher', name: 'demo-dashboard' })).token;
    const dep = o.security !== 'ckks' ? await api<DeploymentView>(target, 'GET', '/v1/deployment') : null;
    return {
      ok: true,
      root,
      coordinatorUrl: url,
      dashboardUrl: `${url.replace(/\/$/, '')}/`,
      dashboardToken,
      experiment: exp.id,
      security: o.security,
      privacy: privacy ? { mode: privacy.mode, clip: privacy.clip, noiseMultiplier: privacy.noiseMultiplier, delta: privacy.delta, epsilon: privacy.epsilon } : null,
      rounds: [...reported.values()].sort((a, b) => a.round - b.round),
      initialVersion,
      finalVersion,
      deployedVersion,
      sites: sites.map((s, i) => ({
        name: s.profile.name,
        pid: s.proc!.pid,
        servePort: s.servePort,
        classBalance: s.profile.classBalance,
        intensityShift: s.profile.scanner.intensityShift,
        examples: s.split,
        initialAccuracy: initialAcc[i],
        finalAccuracy: finalAcc[i],
        active: dep?.sites.find((x) => x.site === s.profile.name)?.active ?? null,
        inference: inference.get(s.profile.name) ?? [],
        refusedByPolicy: keptByPolicy.get(s.profile.name) ?? null,
      })),
      processes: procs.pids(),
      seconds: out.elapsedSeconds(),
    };
  })();

  const result = await Promise.race([steps.then((summary) => ({ kind: 'done' as const, summary }), (err: unknown) => ({ kind: 'failure' as const, failure: asFailure(err) })), stopped]);
  steps.catch(() => {}); // (after a signal or a dead child, the steps may still fail: already handled)

  let code = 0;
  if (result.kind === 'done') {
    const s = result.summary;
    if (o.jsonFile) writeFileSync(o.jsonFile, `${JSON.stringify(s, null, 2)}\n`);
    out.text(summaryLines(s, o));
    if (!o.exit) {
      out.text([`The federation keeps running; open the dashboard now. Press Ctrl-C to stop every process${o.keep ? '' : ' and remove the working folder'}.`]);
      const next = await stopped;
      if (next.kind === 'failure') {
        out.failure(next.failure.message, next.failure.tail, next.failure.logFile);
        code = 1;
      } else out.text([`received ${next.signal}: stopping`]);
    }
  } else if (result.kind === 'failure') {
    out.failure(result.failure.message, result.failure.tail, result.failure.logFile);
    code = 1;
  } else {
    out.stopRounds();
    out.text([`fedmed demo: received ${result.signal}: stopping every process`]);
    code = result.signal === 'SIGINT' ? 130 : 143;
  }

  await procs.stopAll();
  for (const [s, h] of handlers) process.off(s, h);
  if (o.jsonFile && result.kind !== 'done') writeFileSync(o.jsonFile, `${JSON.stringify({ ok: false, root, error: result.kind === 'failure' ? result.failure.message : `interrupted by ${result.signal}`, processes: procs.pids() }, null, 2)}\n`);
  if (code === 1 || o.keep) out.text([`working folder kept: ${root} (logs in ${join(root, 'logs')})`]);
  else rmSync(root, { recursive: true, force: true });
  out.text([`all ${procs.pids().length} processes the demo started have exited`]);
  return code;
}

function asFailure(err: unknown): DemoFailure {
  if (err instanceof DemoFailure) return err;
  const e = err as Error;
  return new DemoFailure(e?.message ?? String(err), e?.stack && !(e as { code?: string }).code ? e.stack.split('\n').slice(1, 6).join('\n') : '');
}

function summaryLines(s: DemoSummary, o: DemoOptions): string[] {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`.padStart(6);
  const lines = ['', `Accuracy on each site's own test split (initial model → final model of round ${s.rounds.length}):`];
  for (const site of s.sites) lines.push(`  ${site.name.padEnd(12)} ${pct(site.initialAccuracy)} → ${pct(site.finalAccuracy)}   (${site.examples.test} test images, classes ${site.classBalance.map((b) => `${Math.round(b * 100)}%`).join('/')}, scanner shift ${site.intensityShift})`);
  if (s.privacy) lines.push(`Privacy: ε = ${s.privacy.epsilon === null ? 'unknown' : s.privacy.epsilon.toFixed(2)} at δ = ${s.privacy.delta} (client-level DP, ${s.privacy.mode} noise, z = ${s.privacy.noiseMultiplier}, clip ${s.privacy.clip}; with only ${o.sites} sites ε is large: DP across clients needs many clients)`);
  const kept = s.sites.filter((x) => x.refusedByPolicy);
  if (s.deployedVersion && kept.length) lines.push(`Serving version ${s.deployedVersion.slice(0, 12)} on ${s.sites.length - kept.length} of ${s.sites.length} sites; ${kept.map((x) => `${x.name} kept ${x.active?.slice(0, 12)} (its own policy refused the new one)`).join('; ')}`);
  else if (s.deployedVersion) lines.push(`Serving on every site: version ${s.deployedVersion.slice(0, 12)}${s.deployedVersion === s.finalVersion ? ' (the final round\'s)' : ` (the final round's ${s.finalVersion.slice(0, 12)} was held by the gate)`}`);
  lines.push('', `Dashboard: ${s.dashboardUrl}`, `  sign in with this researcher token: ${s.dashboardToken}`, `  (API: FEDMED_COORDINATOR=${s.coordinatorUrl} FEDMED_TOKEN=<that token> npx fedmed status)`);
  lines.push(`Processes: ${s.processes.filter((p) => p.name === 'coordinator' || p.name.startsWith('edge-')).map((p) => `${p.name} ${p.pid}`).join(', ')}`);
  lines.push(`Done in ${s.seconds.toFixed(1)} s.`);
  return lines;
}

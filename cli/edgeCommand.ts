/** `fedmed edge enroll|start|rollback|versions` (and the policy commands): a hospital's edge node joining and serving the federation. */
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { enrollSite } from '../edge-client/federation/enrollment.js';
import { loadSitePolicy, policyFromFlags, policyPath } from '../edge-client/policy/sitePolicy.js';
import { UsageError } from '../shared/errors.js';
import { showFingerprint } from '../shared/secure/trust/fingerprint.js';
import { TRAINING_BACKENDS, type TrainingBackendName } from '../edge-client/training/trainingBackendNames.js';
import { floatOption, intOption } from './parseNumber.js';
import { parseProviderList } from '../edge-client/inference/executionProviders.js';
import { edgePolicyCommands, givenPolicyFlags, withPolicyOptions } from './edgePolicyCommands.js';
import { edgeTokenCommands } from './edgeTokenCommands.js';
import { casesOptions, withDicomOptions, type DicomFlags } from './edgeDicomOptions.js';
import { edgeCasesCommands } from './edgeCasesCommands.js';

export function edgeCommand(): Command {
  const cmd = new Command('edge').description('run a hospital edge node');
  cmd
    .command('enroll')
    .description("create this site's keys and register them with a one-time join token; pin the federation admin key the token names")
    .requiredOption('--coordinator <url>', 'coordinator URL, e.g. https://fl.example.org:8700')
    .requiredOption('--token <token>', 'one-time join token from the federation admin (fmj_<secret>.<fingerprint>)')
    .requiredOption('--state-dir <dir>', "where this site's key and state live")
    .option('--insecure-transport', 'allow plain http/ws to a coordinator that is not on this machine (no TLS: not for production)')
    .option('--json', 'print JSON')
    .action(async (flags: { coordinator: string; token: string; stateDir: string; insecureTransport?: boolean; json?: boolean }) => {
      const r = await enrollSite(flags.coordinator, flags.token, flags.stateDir, { insecureTransport: flags.insecureTransport });
      if (r.warning) process.stderr.write(`fedmed: warning: ${r.warning}\n`);
      if (flags.json) return void process.stdout.write(`${JSON.stringify(r)}\n`);
      console.log(
        [
          `enrolled as site "${r.site}" of the federation ${showFingerprint(r.adminFingerprint)} (coordinator certificate ${r.coordinatorCertificateSerial}); keys and state in ${flags.stateDir}`,
          `this site's key fingerprint: ${showFingerprint(r.siteFingerprint)}`,
          `give it to the federation admin by a channel other than this one (phone, signed mail); they certify it with`,
          `  fedmed site certify ${r.site} --fingerprint ${showFingerprint(r.siteFingerprint)} --admin-key ADMIN_KEY ...`,
          'until then the site can connect but is never sampled',
        ].join('\n'),
      );
    });
  withPolicyOptions(withDicomOptions(
    cmd
      .command('start')
      .description('connect to the coordinator and take part in rounds with the local data, under the site policy (STATE_DIR/policy.json, or the policy options below)')
      .requiredOption('--state-dir <dir>', 'state dir from "fedmed edge enroll"')
      .option('--data <path>', 'local data: .npz, .csv, a PNG class folder, or "cases": the labelled cases of the case store (the default with a DICOM source); never leaves this machine')
      .option('--model-cache <dir>', 'where the last global model is kept (default STATE_DIR/models)')
      .option('--coordinator <urls>', 'coordinator URL(s) to use, comma-separated, in order (default: the one pinned at enrolment); with a standby coordinator, give both: the edge fails over (the URLs in the coordinator\'s certificate are tried too)')
      .option('--workers <n>', 'training worker threads', intOption('--workers', 1), 1)
      .addOption(new Option('--backend <name>', 'tfjs training backend').choices([...TRAINING_BACKENDS]).default('wasm'))
      .option('--seed <n>', 'seed of the local train/val/test split (CSV and PNG data)', intOption('--seed'), 1)
      .option('--binarize-label', 'CSV: label = 1 when > 0')
      .option('--serve-port <port>', 'serve inference (POST /v1/infer, /healthz, /metrics) on this port', intOption('--serve-port', 0))
      .option('--serve-host <host>', 'address the inference service listens on', '127.0.0.1')
      .option('--serve-tls-cert <file>', 'serve inference over https with this certificate (PEM; with --serve-tls-key)')
      .option('--serve-tls-key <file>', 'private key of --serve-tls-cert (PEM)')
      .option('--serve-insecure', 'allow plain HTTP on an address other than loopback (warned at each start)')
      .option('--serve-no-auth', 'serve without access tokens (loopback only; tests and local tools)')
      .option('--max-batch <n>', 'dynamic batching: largest batch (1 = off)', intOption('--max-batch', 1), 32)
      .option('--max-wait-ms <ms>', 'dynamic batching: longest a request waits for a batch to fill', floatOption('--max-wait-ms', 0), 2)
      .option('--keep-versions <k>', 'model versions kept on disk for rollback', intOption('--keep-versions', 2), 3)
      .option('--providers <list>', 'inference execution providers in order of preference', 'tensorrt,cuda,cpu'),
  )).action(async function (this: Command, flags: DicomFlags & { stateDir: string; data?: string; modelCache?: string; coordinator?: string; workers: number; backend: TrainingBackendName; seed: number; binarizeLabel?: boolean; servePort?: number; serveHost: string; serveTlsCert?: string; serveTlsKey?: string; serveInsecure?: boolean; serveNoAuth?: boolean; maxBatch: number; maxWaitMs: number; keepVersions: number; providers: string }) {
    // One source of rules: a policy file, or the options — not both.
    const given = givenPolicyFlags(this);
    const file = loadSitePolicy(flags.stateDir); // refuses to start on a file that does not validate, naming the field
    if (file && Object.keys(given).length > 0) throw new UsageError(`${policyPath(flags.stateDir)} holds this site's policy; edit it instead of passing ${Object.keys(given).map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}`);
    const policy = file ?? policyFromFlags(given);
    const hasDicomSource = flags.dicomPort !== undefined || flags.pacs !== undefined;
    const dataPath = flags.data ?? (hasDicomSource ? 'cases' : undefined);
    if (dataPath === undefined) throw new UsageError('give --data FILE (.npz, .csv, a PNG class folder), or a DICOM source (--dicom-port, --pacs) to train on labelled cases');
    const cases = casesOptions(flags, dataPath === 'cases');
    const serve = flags.servePort !== undefined ? await serveOptions(flags) : null;
    // Loaded here: these pull in tfjs, which other commands do not need.
    const { initTrainingBackend } = await import('../edge-client/training/trainingBackend.js');
    const { loadDataset } = await import('../edge-client/data/loadDataset.js');
    const { EdgeNode } = await import('../edge-client/edgeNode.js');
    await initTrainingBackend(flags.backend);
    const data = dataPath === 'cases' ? ('cases' as const) : loadDataset(dataPath, { seed: flags.seed, csv: { binarizeLabel: flags.binarizeLabel } });
    const node = new EdgeNode({
      stateDir: flags.stateDir,
      modelCacheDir: flags.modelCache,
      ...(flags.coordinator !== undefined ? { coordinatorUrls: coordinatorUrls(flags.coordinator) } : {}),
      data,
      ...(cases ? { cases } : {}),
      workers: flags.workers,
      backend: flags.backend,
      policy,
      keepVersions: flags.keepVersions,
      inference: { providers: parseProviderList(flags.providers) },
      ...(serve ? { serve: { ...serve, port: flags.servePort!, batching: { maxBatch: flags.maxBatch, maxWaitMs: flags.maxWaitMs } } } : {}),
    });
    const done = new Promise<void>((resolve, reject) => {
      // A revoked site or a coordinator with the wrong key: stop serving too, and exit 1.
      node.client.on('fatal', (err: Error) => void node.stop().finally(() => reject(err)));
      const stop = (): void => void node.stop().then(resolve);
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
    await node.start();
    await done;
  });
  cmd
    .command('rollback')
    .description('serve the previous model version again (or --to ID); a running edge switches within a second')
    .requiredOption('--state-dir <dir>', 'state dir of the edge')
    .option('--to <version>', 'a version stored on this edge, or a unique prefix (see "fedmed edge versions")')
    .action(async (flags: { stateDir: string; to?: string }) => {
      const { VersionStore } = await import('../edge-client/ota/versionStore.js');
      const { EdgeState } = await import('../edge-client/federation/edgeState.js');
      // The target's manifest is checked against the admin key this site pinned before it is made active.
      const store = new VersionStore(flags.stateDir, 3, new EdgeState(flags.stateDir).trust());
      const r = store.rollback(flags.to);
      console.log(`rolled back from ${r.from ?? 'nothing'} to ${r.to}; ${r.from ? 'the edge will not re-install ' + r.from.slice(0, 12) + ' until the coordinator offers a newer version' : ''}`.trim());
    });
  cmd
    .command('versions')
    .description('model versions stored on this edge, the active one marked')
    .requiredOption('--state-dir <dir>', 'state dir of the edge')
    .option('--json', 'print JSON')
    .action(async (flags: { stateDir: string; json?: boolean }) => {
      const { VersionStore } = await import('../edge-client/ota/versionStore.js');
      const store = new VersionStore(flags.stateDir);
      const rows = store.stored().map((id) => ({ id, active: id === store.active, refused: store.refusal(id) ?? null, manifest: store.load(id).signed.manifest }));
      if (flags.json) return void process.stdout.write(`${JSON.stringify(rows)}\n`);
      for (const r of rows) console.log(`${r.active ? '*' : ' '} ${r.id}  ${r.manifest.experiment} round ${r.manifest.round}${r.refused ? `  (${r.refused})` : ''}`);
    });
  edgePolicyCommands(cmd);
  edgeTokenCommands(cmd);
  edgeCasesCommands(cmd);
  return cmd;
}

/** The inference service's security from the --serve-* flags, refused before anything starts when it would be unsafe. */
async function serveOptions(f: { stateDir: string; serveHost: string; serveTlsCert?: string; serveTlsKey?: string; serveInsecure?: boolean; serveNoAuth?: boolean }) {
  const { isLoopbackHost } = await import('../edge-client/inference/inferenceService.js');
  const { ServiceTokens, serviceTokensPath } = await import('../edge-client/inference/serviceTokens.js');
  if ((f.serveTlsCert === undefined) !== (f.serveTlsKey === undefined)) throw new UsageError('give both --serve-tls-cert and --serve-tls-key, or neither');
  const loopback = isLoopbackHost(f.serveHost);
  if (!f.serveTlsCert && !loopback && !f.serveInsecure) throw new UsageError(`refusing to serve inference over plain HTTP on ${f.serveHost}: give --serve-tls-cert and --serve-tls-key (https), or --serve-insecure to accept plain HTTP on the network`);
  if (f.serveNoAuth && !loopback) throw new UsageError(`--serve-no-auth is allowed only on loopback, not with --serve-host ${f.serveHost}`);
  const tls = f.serveTlsCert ? { cert: readFileSync(f.serveTlsCert), key: readFileSync(f.serveTlsKey!) } : undefined;
  if (f.serveNoAuth) return { host: f.serveHost, auth: 'none' as const, tls, insecure: f.serveInsecure };
  const tokens = ServiceTokens.forStateDir(f.stateDir);
  if (tokens.live() === 0) process.stderr.write(`fedmed: warning: no live inference tokens in ${serviceTokensPath(f.stateDir)}; every request gets 401 until you run "fedmed edge token create --state-dir ${f.stateDir} --role clinician"\n`);
  return { host: f.serveHost, auth: 'tokens' as const, tokens, tls, insecure: f.serveInsecure };
}

/** `--coordinator URL[,URL…]`: the URLs, each checked as a URL here (and for TLS by the edge client). */
function coordinatorUrls(list: string): string[] {
  const urls = list.split(',').map((u) => u.trim()).filter((u) => u.length > 0);
  if (urls.length === 0) throw new UsageError('--coordinator needs at least one URL (comma-separated)');
  for (const u of urls) {
    if (!URL.canParse(u)) throw new UsageError(`--coordinator: "${u}" is not a URL (e.g. https://fl.example.org:8700)`);
  }
  return urls;
}

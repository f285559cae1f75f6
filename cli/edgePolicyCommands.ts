/**
 * The hospital operator's side of the site policy: `fedmed edge policy init|show|check`,
 * `fedmed edge experiments`, `approve`, `reject`, and `activate` (manual deployment). All of
 * them work on the state dir alone — the coordinator is never asked.
 */
import { existsSync } from 'node:fs';
import { Command, Option } from 'commander';
import { UsageError } from '../shared/errors.js';
import { REQUIRED_SECURITY } from '../edge-client/federation/experimentSecurity.js';
import { ExperimentApprovals } from '../edge-client/policy/experimentApprovals.js';
import { DEFAULT_MAX_ACCURACY_DROP, loadSitePolicy, policyFromFlags, policyHash, policyPath, writeSitePolicy, type PolicyFlags } from '../edge-client/policy/sitePolicy.js';
import { floatOption, intOption } from './parseNumber.js';

/** The `edge start` flags that describe a policy (refused beside a policy file: one source of rules). */
export const POLICY_FLAG_NAMES = ['privacyBudget', 'privacyBudgetPerExperiment', 'privacyDelta', 'privacyMinNoiseMultiplier', 'secaggMinGroup', 'requireSecurity', 'requireApproval', 'accuracyFloor', 'maxAccuracyDrop', 'releaseCkksMetrics'] as const;

/** Adds the policy-describing options (shared by `edge start` and `edge policy init`). */
export function withPolicyOptions(cmd: Command): Command {
  return cmd
    .option('--privacy-budget <epsilon>', "the site's total privacy budget ε; rounds without DP or beyond it are refused", floatOption('--privacy-budget'))
    .option('--privacy-budget-per-experiment <epsilon>', 'optional per-experiment limit', floatOption('--privacy-budget-per-experiment'))
    .option('--privacy-delta <delta>', 'δ at which the budget is counted (default 1e-5)', floatOption('--privacy-delta'))
    .option('--privacy-min-noise-multiplier <z>', 'refuse DP rounds whose noise multiplier is below this (the site computes its noise itself from z and the clip norm)', floatOption('--privacy-min-noise-multiplier', 0))
    .option('--secagg-min-group <n>', 'SecAgg+: refuse share groups (this site and its neighbours) smaller than this (default 3); the sum a site is hidden in has at least this many sites, so set it above the number of sites that might collude with the coordinator', intOption('--secagg-min-group', 3))
    .addOption(new Option('--require-security <mode>', 'refuse rounds without this protection: secagg, ckks, secure (either) or any (default)').choices([...REQUIRED_SECURITY]))
    .option('--require-approval', 'train only for experiments the site operator approved ("fedmed edge approve")')
    .option('--release-ckks-metrics', 'CKKS experiments: release metrics of the decrypted model (withheld by default: under CKKS the site cannot check that it decrypted an aggregate)')
    .option('--accuracy-floor <acc>', 'a new version must reach this accuracy on the local test split before it serves', floatOption('--accuracy-floor', 0))
    .option('--max-accuracy-drop <drop|off>', `a version the coordinator offers may score at most this much below the serving one on the local test split (default ${DEFAULT_MAX_ACCURACY_DROP}; "off": no relative check)`, accuracyDropOption);
}

/** `--max-accuracy-drop`: a fraction in [0, 1], or "off" (kept as the string: commander turns a null into ""; givenPolicyFlags maps it to null). */
function accuracyDropOption(value: string): number | 'off' {
  if (value === 'off' || value === 'none') return 'off';
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new UsageError(`--max-accuracy-drop must be a number in [0, 1] or "off", got "${value}"`);
  return n;
}

/** The policy flags the operator actually gave on the command line. */
export function givenPolicyFlags(cmd: Command): PolicyFlags {
  const out: Record<string, unknown> = {};
  for (const k of POLICY_FLAG_NAMES) if (cmd.getOptionValueSource(k) === 'cli') out[k] = cmd.getOptionValue(k) as unknown;
  if (out.maxAccuracyDrop === 'off') out.maxAccuracyDrop = null;
  return out as PolicyFlags;
}

export function edgePolicyCommands(edge: Command): void {
  const policy = edge.command('policy').description("this site's policy (STATE_DIR/policy.json): what it trains for and what may leave");
  withPolicyOptions(
    policy
      .command('init')
      .description('write STATE_DIR/policy.json from the defaults and these options (then edit it by hand; the running edge applies it from the next round)')
      .requiredOption('--state-dir <dir>', 'state dir of the edge')
      .option('--force', 'overwrite an existing policy file'),
  ).action(function (this: Command, flags: { stateDir: string; force?: boolean }) {
    if (!existsSync(flags.stateDir)) throw new UsageError(`${flags.stateDir} does not exist (enrol the site first: "fedmed edge enroll")`);
    if (existsSync(policyPath(flags.stateDir)) && !flags.force) throw new UsageError(`${policyPath(flags.stateDir)} exists; edit it, or pass --force to replace it`);
    const p = policyFromFlags(givenPolicyFlags(this));
    writeSitePolicy(flags.stateDir, p);
    console.log(`wrote ${policyPath(flags.stateDir)} (policy ${policyHash(p)}); review it: "fedmed edge policy show --state-dir ${flags.stateDir}"`);
  });
  policy
    .command('show')
    .description('print the policy in force (the file, or the defaults when there is none)')
    .requiredOption('--state-dir <dir>', 'state dir of the edge')
    .action((flags: { stateDir: string }) => {
      const p = loadSitePolicy(flags.stateDir);
      if (!p) process.stderr.write(`fedmed: no ${policyPath(flags.stateDir)}: the edge runs under its command-line flags; these are the defaults\n`);
      process.stdout.write(`${JSON.stringify(p ?? policyFromFlags({}), null, 2)}\n`);
    });
  policy
    .command('check')
    .description('validate STATE_DIR/policy.json (exit 1 naming the field that is wrong)')
    .requiredOption('--state-dir <dir>', 'state dir of the edge')
    .action((flags: { stateDir: string }) => {
      const p = loadSitePolicy(flags.stateDir);
      if (!p) throw new UsageError(`no policy file at ${policyPath(flags.stateDir)} ("fedmed edge policy init" writes one)`);
      console.log(`${policyPath(flags.stateDir)}: valid (policy ${policyHash(p)})`);
    });

  edge
    .command('experiments')
    .description('experiments that asked this site to train: pending ones with their settings, and decisions taken')
    .requiredOption('--state-dir <dir>', 'state dir of the edge')
    .option('--json', 'print JSON')
    .action((flags: { stateDir: string; json?: boolean }) => {
      const a = new ExperimentApprovals(flags.stateDir);
      const pending = a.listPending();
      const decisions = a.decisionsList();
      if (flags.json) return void process.stdout.write(`${JSON.stringify({ pending, decisions })}\n`);
      if (pending.length === 0) console.log('no experiment awaits approval');
      for (const p of pending) {
        const s = p.settings;
        const priv = s.privacy ? `DP ${s.privacy.mode}, z = ${s.privacy.noiseMultiplier}, δ = ${s.privacy.delta}, clip ${s.privacy.clip}` : 'no differential privacy';
        console.log(`pending  ${s.experiment}  settings ${p.hash}  (asked ${p.rounds} time(s) since ${p.firstSeen})`);
        console.log(`         model ${s.model.specHash.slice(0, 12)} (${s.model.layers} layers); training ${s.training.steps !== null ? `${s.training.steps} steps` : `${s.training.epochs} epoch(s)`}, batch ${s.training.batchSize}, ${s.training.optimizer} lr ${s.training.learningRate}${s.training.proxMu > 0 ? `, FedProx μ ${s.training.proxMu}` : ''}`);
        const sec = s.security;
        const params = [sec.bits !== undefined ? `${sec.bits} bits` : '', sec.range !== undefined ? `range ${sec.range}` : '', sec.maxWeight !== undefined ? `weight ≤ ${sec.maxWeight}` : '', sec.keySet ? `key set ${sec.keySet}` : ''].filter(Boolean).join(', ');
        console.log(`         privacy: ${priv}; protection: ${sec.protection}${params ? ` (${params})` : ''}`);
      }
      for (const d of decisions) console.log(`${d.decision.padEnd(8)} ${d.experiment}  settings ${d.hash}  at ${d.at}${d.reason ? `: ${d.reason}` : ''}`);
    });
  for (const decision of ['approve', 'reject'] as const) {
    edge
      .command(`${decision} <experiment>`)
      .description(decision === 'approve' ? 'let this site train for the experiment with the settings it asked with (a change of settings asks again)' : 'refuse the experiment with its current settings')
      .requiredOption('--state-dir <dir>', 'state dir of the edge')
      .requiredOption('--settings <hash>', 'the full settings hash you reviewed ("fedmed edge experiments"): refused if the experiment now asks with others')
      .option('--reason <text>', 'why (kept with the decision)')
      .action((experiment: string, flags: { stateDir: string; settings: string; reason?: string }) => {
        const d = new ExperimentApprovals(flags.stateDir).decide(experiment, decision === 'approve' ? 'approved' : 'rejected', flags.settings, flags.reason);
        console.log(`${d.decision} ${experiment} (settings ${d.hash.slice(0, 12)}); the running edge applies it from the next round`);
      });
  }
  edge
    .command('activate <version>')
    .description('make a stored version serve (site policy deployment.mode = "manual"); a running edge switches within a second')
    .requiredOption('--state-dir <dir>', 'state dir of the edge')
    .action(async (version: string, flags: { stateDir: string }) => {
      const { VersionStore } = await import('../edge-client/ota/versionStore.js');
      const { EdgeState } = await import('../edge-client/federation/edgeState.js');
      const r = new VersionStore(flags.stateDir, 3, new EdgeState(flags.stateDir).trust()).activate(version);
      console.log(`activated ${r.to} (was ${r.from ?? 'nothing'})`);
    });
}

/**
 * Rollout control over the REST API (researcher): `fedmed model status|publish|promote|rollback`.
 * A version goes to every site, or first to a canary set of sites; the canary is then promoted
 * to all or rolled back.
 */
import { Command } from 'commander';
import { UsageError } from '../shared/errors.js';
import { api, resolveTarget, type ApiTarget } from './apiClient.js';

interface GateDecision {
  version: string;
  round: number;
  decision: 'deployed' | 'held';
  reason: string;
}

interface DeploymentView {
  current: string | null;
  held?: GateDecision | null;
  lastGate?: GateDecision;
  canary: { version: string; sites: string[] } | null;
  previous: string[];
  sites: { site: string; target: string | null; active: string | null; lastRefusal: { version: string; status: string; reason?: string; at: string } | null }[];
}

function target(cmd: Command): Command {
  return cmd.option('--coordinator <url>', 'coordinator URL (or FEDMED_COORDINATOR)').option('--token <token>', 'API token (or FEDMED_TOKEN)').option('--json', 'print JSON');
}

const short = (id: string | null | undefined): string => (id ? id.slice(0, 12) : '-');

function print(view: DeploymentView, json?: boolean): void {
  if (json) return void process.stdout.write(`${JSON.stringify(view)}\n`);
  console.log(`current ${short(view.current)}${view.canary ? `   canary ${short(view.canary.version)} on ${view.canary.sites.join(', ')}` : ''}`);
  if (view.held) console.log(`held ${short(view.held.version)} (round ${view.held.round}) by the deployment gate: ${view.held.reason}`);
  else if (view.lastGate) console.log(`gate: deployed ${short(view.lastGate.version)} (round ${view.lastGate.round}): ${view.lastGate.reason}`);
  for (const s of view.sites) {
    const r = s.lastRefusal;
    const note = r ? `  (last refusal: ${r.status} ${short(r.version)}${r.reason ? `: ${r.reason}` : ''})` : '';
    console.log(`  ${s.site}: target ${short(s.target)}, running ${short(s.active)}${note}`);
  }
}

export function modelCommand(): Command {
  const cmd = new Command('model').description('deploy model versions to the sites\' inference services (researcher)');
  target(cmd.command('status').description('which version each site should run and runs')).action(async (flags: ApiTarget & { json?: boolean }) => {
    print(await api<DeploymentView>(resolveTarget(flags), 'GET', '/v1/deployment'), flags.json);
  });
  target(
    cmd
      .command('publish')
      .description('deploy a version to every site, or with --sites to a canary set first')
      .argument('<version>', 'version id (or a unique prefix of >= 8 hex digits)')
      .option('--sites <names>', 'comma-separated sites (a canary)'),
  ).action(async (version: string, flags: ApiTarget & { sites?: string; json?: boolean }) => {
    const sites = flags.sites?.split(',').map((s) => s.trim()).filter(Boolean);
    if (flags.sites !== undefined && (!sites || sites.length === 0)) throw new UsageError('--sites needs at least one site name');
    print(await api<DeploymentView>(resolveTarget(flags), 'POST', '/v1/deployment/publish', { version, ...(sites ? { sites } : {}) }), flags.json);
  });
  target(cmd.command('promote').description("deploy the canary's version to every site")).action(async (flags: ApiTarget & { json?: boolean }) => {
    print(await api<DeploymentView>(resolveTarget(flags), 'POST', '/v1/deployment/promote'), flags.json);
  });
  target(cmd.command('rollback').description('end the canary, or go back to the previous (or --to) version everywhere').option('--to <version>', 'version to go back to')).action(
    async (flags: ApiTarget & { to?: string; json?: boolean }) => {
      print(await api<DeploymentView>(resolveTarget(flags), 'POST', '/v1/deployment/rollback', flags.to ? { to: flags.to } : {}), flags.json);
    },
  );
  return cmd;
}

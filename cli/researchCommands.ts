/**
 * Researcher commands over the REST API: `experiment create|list`, `round start [--wait]`,
 * `status`, and the admin's `token create`.
 */
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { UsageError } from '../shared/errors.js';
import { api, resolveTarget, type ApiTarget } from './apiClient.js';
import { floatOption, intOption } from './parseNumber.js';
import { REFUSAL_LABELS } from '../coordinator/rounds/refusalSummary.js';
import { siteText } from '../coordinator/rounds/siteText.js';
import type { RefusalKind } from '../shared/protocol/messages.js';

function target(cmd: Command): Command {
  return cmd.option('--coordinator <url>', 'coordinator URL (or FEDMED_COORDINATOR)').option('--token <token>', 'API token (or FEDMED_TOKEN)');
}

interface RoundView {
  round: number;
  status: string;
  reason: string | null;
  evalMetrics: { accuracy: number; loss: number; auc: number | null } | null;
  sites: { site: string; phase: string; status: string }[];
  timings: Record<string, number>;
}

export function experimentCommand(): Command {
  const cmd = new Command('experiment').description('define experiments (researcher)');
  target(cmd.command('create').description('create an experiment from a JSON config').requiredOption('--config <file.json>', 'experiment config (see README)').option('--json', 'print JSON')).action(
    async (flags: ApiTarget & { config: string; json?: boolean }) => {
      let config: unknown;
      try {
        config = JSON.parse(readFileSync(flags.config, 'utf8'));
      } catch (err) {
        throw new UsageError(`${flags.config}: cannot read the experiment config (${(err as Error).message})`);
      }
      const exp = await api<{ id: string; name: string; parameters: number }>(resolveTarget(flags), 'POST', '/v1/experiments', config);
      if (flags.json) process.stdout.write(`${JSON.stringify(exp)}\n`);
      else console.log(`experiment ${exp.id} ("${exp.name}", ${exp.parameters} parameters) created`);
    },
  );
  target(cmd.command('list').description('list experiments').option('--json', 'print JSON')).action(async (flags: ApiTarget & { json?: boolean }) => {
    const rows = await api<{ id: string; name: string; roundsCompleted: number; running: boolean }[]>(resolveTarget(flags), 'GET', '/v1/experiments');
    if (flags.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
    else for (const r of rows) console.log(`${r.id}  ${r.name}  rounds ${r.roundsCompleted}${r.running ? '  (running)' : ''}`);
  });
  return cmd;
}

export function roundCommand(): Command {
  const cmd = new Command('round').description('run federated rounds (researcher)');
  target(
    cmd
      .command('start')
      .description('start N rounds of an experiment')
      .requiredOption('--experiment <id>', 'experiment id')
      .option('--rounds <n>', 'number of rounds', intOption('--rounds', 1), 1)
      .option('--wait', 'wait until the rounds end; a line per round')
      .option('--json', 'print JSON (with --wait: the rounds)'),
  ).action(async (flags: ApiTarget & { experiment: string; rounds: number; wait?: boolean; json?: boolean }) => {
    const t = resolveTarget(flags);
    const started = await api<{ firstRound: number; rounds: number }>(t, 'POST', `/v1/experiments/${encodeURIComponent(flags.experiment)}/rounds`, { rounds: flags.rounds });
    if (!flags.wait) {
      if (flags.json) process.stdout.write(`${JSON.stringify(started)}\n`);
      else console.log(`rounds ${started.firstRound}..${started.firstRound + started.rounds - 1} of ${flags.experiment} started`);
      return;
    }
    const printed = new Set<number>();
    for (;;) {
      // Read "running" first: rounds read after it are then complete if it says false.
      const { running } = await api<{ running: boolean }>(t, 'GET', `/v1/experiments/${encodeURIComponent(flags.experiment)}`);
      const rounds = (await api<RoundView[]>(t, 'GET', `/v1/experiments/${encodeURIComponent(flags.experiment)}/rounds`)).filter((r) => r.round >= started.firstRound);
      for (const r of rounds) {
        if (r.status === 'running' || printed.has(r.round)) continue;
        printed.add(r.round);
        if (!flags.json) {
          const ev = r.evalMetrics ? ` eval acc ${r.evalMetrics.accuracy.toFixed(4)} loss ${r.evalMetrics.loss.toFixed(4)}${r.evalMetrics.auc !== null ? ` auc ${r.evalMetrics.auc.toFixed(4)}` : ''}` : '';
          const fitSites = r.sites.filter((s) => s.phase === 'fit');
          console.log(`round ${r.round}: ${r.status}${r.reason ? ` (${r.reason})` : ''} - ${fitSites.filter((s) => s.status === 'done').length}/${fitSites.length} sites${ev} in ${((r.timings.totalMs ?? 0) / 1000).toFixed(1)} s`);
        }
      }
      if (!running) {
        if (flags.json) process.stdout.write(`${JSON.stringify(rounds)}\n`);
        if (rounds.length < started.rounds || rounds.some((r) => r.status !== 'completed')) process.exitCode = 1;
        return;
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  });
  return cmd;
}

interface StatusSite {
  name: string;
  online: boolean;
  revoked: boolean;
  roundsJoined: number;
  refusals?: { experiment: string; round: number; kind: RefusalKind; reason: string; supersededInRound?: number }[];
  pendingApproval?: string[];
}

/** A site's open refusals and pending approvals, a line each (text from sites made safe to print). */
function refusalLines(site: StatusSite): string[] {
  const lines: string[] = [];
  if (site.pendingApproval?.length) lines.push(`  ${site.name}: approval pending for ${site.pendingApproval.map((e) => siteText(e)).join(', ')}`);
  for (const r of site.refusals ?? []) {
    if (r.supersededInRound !== undefined || r.kind === 'approval_pending') continue;
    lines.push(`  ${site.name}: refused ${siteText(r.experiment)} round ${r.round}: ${REFUSAL_LABELS[r.kind] ?? siteText(r.kind)} (${siteText(r.reason)})`);
  }
  return lines;
}

export function statusCommand(): Command {
  return target(new Command('status').description('sites and experiments at a glance').option('--json', 'print JSON')).action(async (flags: ApiTarget & { json?: boolean }) => {
    const s = await api<{ sites: StatusSite[]; experiments: { id: string; name: string; roundsCompleted: number; running: boolean; lastRound: { round: number; status: string; reason: string | null } | null }[] }>(resolveTarget(flags), 'GET', '/v1/status');
    if (flags.json) return void process.stdout.write(`${JSON.stringify(s)}\n`);
    console.log(`sites: ${s.sites.map((x) => `${x.name} (${x.revoked ? 'revoked' : x.online ? 'online' : 'offline'}, ${x.roundsJoined} rounds)`).join(', ') || 'none'}`);
    for (const site of s.sites) for (const line of refusalLines(site)) console.log(line);
    for (const e of s.experiments) console.log(`${e.id} "${e.name}": ${e.roundsCompleted} rounds completed${e.running ? ', running' : ''}${e.lastRound ? `; last round ${e.lastRound.round} ${e.lastRound.status}${e.lastRound.reason ? ` (${e.lastRound.reason})` : ''}` : ''}`);
  });
}

export function tokenCommand(): Command {
  const cmd = new Command('token').description('API tokens (federation admin)');
  target(
    cmd
      .command('create')
      .description('create an API token (printed once; the coordinator keeps only its hash)')
      .addOption(new Option('--role <role>', 'admin: sites and tokens; researcher: experiments and rounds; deployer: clinical deployments').choices(['admin', 'researcher', 'deployer']).default('researcher'))
      .option('--name <label>', "a label for the admin's list")
      .option('--expires-days <days>', 'the token stops working after this many days', floatOption('--expires-days')),
  ).action(async (flags: ApiTarget & { role: string; name?: string; expiresDays?: number }) => {
    const r = await api<{ token: string; role: string }>(resolveTarget(flags), 'POST', '/v1/tokens', { role: flags.role, ...(flags.name ? { name: flags.name } : {}), ...(flags.expiresDays !== undefined ? { expiresDays: flags.expiresDays } : {}) });
    console.log(r.token);
  });
  target(cmd.command('list').description('API tokens: id, role, label, created, expiry, revoked (never the secrets)').option('--json', 'print JSON')).action(async (flags: ApiTarget & { json?: boolean }) => {
    const rows = await api<{ id: string; role: string; name?: string; createdAt: string; expiresAt?: string; revokedAt?: string; active: boolean }[]>(resolveTarget(flags), 'GET', '/v1/tokens');
    if (flags.json) return void process.stdout.write(`${JSON.stringify(rows)}\n`);
    for (const t of rows) console.log(`${t.id}  ${t.role.padEnd(10)} ${t.active ? 'active ' : 'inactive'} ${t.name ?? ''}  created ${t.createdAt}${t.expiresAt ? `, expires ${t.expiresAt}` : ''}${t.revokedAt ? `, revoked ${t.revokedAt}` : ''}`);
  });
  target(cmd.command('revoke <id>').description('revoke an API token at once (not the last active admin token)')).action(async (id: string, flags: ApiTarget) => {
    await api(resolveTarget(flags), 'DELETE', `/v1/tokens/${encodeURIComponent(id)}`);
    console.log(`revoked ${id}`);
  });
  return cmd;
}

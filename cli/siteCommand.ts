/**
 * `fedmed site add|revoke|list`: the federation admin's site management, either offline on the
 * coordinator's data dir (--data-dir, coordinator stopped) or through the API (--coordinator
 * URL --token ADMIN_TOKEN).
 */
import { Command } from 'commander';
import { CoordinatorStore } from '../coordinator/store/coordinatorStore.js';
import { runningCoordinatorPid } from '../coordinator/store/dataDirLock.js';
import { SiteRegistry } from '../coordinator/siteRegistry.js';
import { UsageError } from '../shared/errors.js';
import { api, resolveTarget, type ApiTarget } from './apiClient.js';

interface SiteFlags extends ApiTarget {
  dataDir?: string;
  json?: boolean;
}

async function offlineRegistry(dataDir: string): Promise<SiteRegistry> {
  const pid = runningCoordinatorPid(dataDir);
  if (pid) throw new UsageError(`a coordinator (pid ${pid}) is running on ${dataDir}; use --coordinator URL --token ADMIN_TOKEN instead of --data-dir`);
  return new SiteRegistry(await CoordinatorStore.open(dataDir));
}

function withTarget(cmd: Command): Command {
  return cmd
    .option('--data-dir <dir>', "the coordinator's data dir (offline, coordinator stopped)")
    .option('--coordinator <url>', 'coordinator URL (or FEDMED_COORDINATOR)')
    .option('--token <token>', 'admin API token (or FEDMED_TOKEN)')
    .option('--json', 'print JSON');
}

export function siteCommand(): Command {
  const cmd = new Command('site').description('manage the federation\'s sites (federation admin)');
  withTarget(cmd.command('add').argument('<name>', 'site name (letters, digits, . _ -)').description('create a site and print its one-time join token')).action(async (name: string, flags: SiteFlags) => {
    const result = flags.dataDir ? await (await offlineRegistry(flags.dataDir)).add(name).then((r) => ({ name: r.site.name, token: r.token })) : await api<{ name: string; token: string }>(resolveTarget(flags), 'POST', '/v1/sites', { name });
    if (flags.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else console.log(`site ${result.name} created. One-time join token (give it to the site's IT team; it is shown only now):\n${result.token}`);
  });
  withTarget(cmd.command('revoke').argument('<name>').description("revoke a site: close its connection and refuse it from now on")).action(async (name: string, flags: SiteFlags) => {
    if (flags.dataDir) await (await offlineRegistry(flags.dataDir)).revoke(name);
    else await api(resolveTarget(flags), 'POST', `/v1/sites/${encodeURIComponent(name)}/revoke`);
    if (flags.json) process.stdout.write(`${JSON.stringify({ name, revoked: true })}\n`);
    else console.log(`site ${name} revoked`);
  });
  withTarget(cmd.command('list').description('list sites')).action(async (flags: SiteFlags) => {
    const rows = flags.dataDir
      ? (await offlineRegistry(flags.dataDir)).list().map((s) => ({ name: s.name, enrolled: !!s.enrolledAt, revoked: !!s.revokedAt, online: false, lastSeen: s.lastSeen, roundsJoined: s.roundsJoined }))
      : await api<{ name: string; enrolled: boolean; revoked: boolean; online: boolean; lastSeen: string | null; roundsJoined: number }[]>(resolveTarget(flags), 'GET', '/v1/sites');
    if (flags.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
    else for (const r of rows) console.log(`${r.name.padEnd(20)} ${r.revoked ? 'revoked ' : r.enrolled ? 'enrolled' : 'pending '} ${r.online ? 'online ' : 'offline'} rounds ${r.roundsJoined} last seen ${r.lastSeen ?? '-'}`);
  });
  return cmd;
}

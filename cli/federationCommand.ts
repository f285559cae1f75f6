/**
 * `fedmed federation keys create|grant|list|decrypt`: the federation admin's CKKS key sets
 * (see cli/federationKeys.ts). Run where the secret key may live: the admin's machine.
 */
import { Command } from 'commander';
import { writeFileAtomic } from '../shared/atomicFile.js';
import { api, resolveTarget, type ApiTarget } from './apiClient.js';
import { createKeySet, decryptVersion, grantKeySet, readSecretKeyFile, type GrantResult } from './federationKeys.js';

function target(cmd: Command): Command {
  return cmd.option('--coordinator <url>', 'coordinator URL (or FEDMED_COORDINATOR)').option('--token <token>', 'admin API token (or FEDMED_TOKEN)');
}

function printGrants(results: GrantResult[], json: boolean | undefined, extra: Record<string, unknown> = {}): void {
  if (json) return void process.stdout.write(`${JSON.stringify({ ...extra, sites: results })}\n`);
  for (const r of results) console.log(r.granted ? `  ${r.site}: key granted` : `  ${r.site}: skipped (${r.reason})`);
}

export function federationCommand(): Command {
  const cmd = new Command('federation').description('federation-wide settings (admin)');
  const keys = cmd.command('keys').description('CKKS key sets for security "ckks" experiments');
  target(
    keys
      .command('create')
      .description('make a CKKS key set, keep its secret key in a file, and give each site a copy wrapped to its encryption key')
      .requiredOption('--secret-key-out <file>', 'where to keep the secret key (mode 0600; needed to grant later sites and to decrypt models)')
      .option('--json', 'print JSON'),
  ).action(async (flags: ApiTarget & { secretKeyOut: string; json?: boolean }) => {
    const { keySet, results } = await createKeySet(resolveTarget(flags), flags.secretKeyOut);
    if (!flags.json) console.log(`key set ${keySet} created; secret key in ${flags.secretKeyOut}`);
    printGrants(results, flags.json, { keySet });
  });
  target(
    keys
      .command('grant')
      .description('wrap the key set for sites that do not hold it yet (new sites, or sites whose encryption key changed)')
      .requiredOption('--secret-key <file>', 'the file written by "keys create"')
      .option('--site <name...>', 'only these sites (default: every eligible site not granted yet)')
      .option('--json', 'print JSON'),
  ).action(async (flags: ApiTarget & { secretKey: string; site?: string[]; json?: boolean }) => {
    const file = readSecretKeyFile(flags.secretKey);
    printGrants(await grantKeySet(resolveTarget(flags), file, flags.site), flags.json, { keySet: file.keySet });
  });
  target(keys.command('list').description('list key sets and the sites holding each').option('--json', 'print JSON')).action(async (flags: ApiTarget & { json?: boolean }) => {
    const sets = await api<{ id: string; createdAt: string; sites: { site: string }[] }[]>(resolveTarget(flags), 'GET', '/v1/ckks/keysets');
    if (flags.json) return void process.stdout.write(`${JSON.stringify(sets)}\n`);
    for (const s of sets) console.log(`${s.id}  created ${s.createdAt}  sites: ${s.sites.map((x) => x.site).join(', ') || 'none'}`);
  });
  target(
    keys
      .command('decrypt')
      .description('decrypt a CKKS experiment\'s model version with the secret key (the coordinator cannot)')
      .requiredOption('--secret-key <file>', 'the file written by "keys create"')
      .requiredOption('--experiment <id>', 'experiment id')
      .requiredOption('--version-id <id>', 'version id (e.g. the experiment\'s currentVersion)')
      .requiredOption('--out <file.fmp>', 'where to write the decrypted model'),
  ).action(async (flags: ApiTarget & { secretKey: string; experiment: string; versionId: string; out: string }) => {
    const bytes = await decryptVersion(resolveTarget(flags), readSecretKeyFile(flags.secretKey), flags.experiment, flags.versionId);
    writeFileAtomic(flags.out, bytes);
    console.log(`decrypted ${flags.versionId} to ${flags.out}`);
  });
  return cmd;
}

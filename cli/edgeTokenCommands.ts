/** `fedmed edge token create|list|revoke`: access tokens for the edge inference service (STATE_DIR/inference-tokens.json). */
import { Command, Option } from 'commander';
import { createServiceToken, listServiceTokens, revokeServiceToken, SERVICE_ROLES, serviceTokensPath, type ServiceRole } from '../edge-client/inference/serviceTokens.js';
import { floatOption } from './parseNumber.js';

export function edgeTokenCommands(edge: Command): void {
  const token = edge.command('token').description('access tokens for the inference service (clinician: /v1/infer; monitor: /healthz and /metrics)');
  token
    .command('create')
    .description('create a token and print it once (only its SHA-256 is stored); a running edge accepts it at the next request')
    .requiredOption('--state-dir <dir>', 'state dir of the edge')
    .addOption(new Option('--role <role>', 'what the token may call').choices([...SERVICE_ROLES]).makeOptionMandatory())
    .option('--name <name>', 'a name to list and revoke it by (default ROLE-ID)')
    .option('--expires-days <d>', 'the token expires after this many days (default: never)', floatOption('--expires-days', 0))
    .option('--json', 'print JSON')
    .action((flags: { stateDir: string; role: ServiceRole; name?: string; expiresDays?: number; json?: boolean }) => {
      const r = createServiceToken(flags.stateDir, { role: flags.role, name: flags.name, expiresDays: flags.expiresDays });
      if (flags.json) return void process.stdout.write(`${JSON.stringify({ token: r.token, id: r.record.id, name: r.record.name, role: r.record.role, createdAt: r.record.createdAt, expiresAt: r.record.expiresAt })}\n`);
      console.log(r.token);
      process.stderr.write(`${flags.role} token "${r.record.name}" (id ${r.record.id}${r.record.expiresAt ? `, expires ${r.record.expiresAt}` : ''}) stored hashed in ${serviceTokensPath(flags.stateDir)}; it is not shown again. Send it as "Authorization: Bearer TOKEN".\n`);
    });
  token
    .command('list')
    .description('tokens of this edge (never the secrets)')
    .requiredOption('--state-dir <dir>', 'state dir of the edge')
    .option('--json', 'print JSON')
    .action((flags: { stateDir: string; json?: boolean }) => {
      const now = Date.now();
      const rows = listServiceTokens(flags.stateDir).map(({ sha256: _hash, ...r }) => ({ ...r, state: r.revokedAt ? 'revoked' : r.expiresAt && Date.parse(r.expiresAt) <= now ? 'expired' : 'live' }));
      if (flags.json) return void process.stdout.write(`${JSON.stringify(rows)}\n`);
      if (rows.length === 0) return void console.log('no tokens (create one: fedmed edge token create --state-dir DIR --role clinician|monitor)');
      for (const r of rows) console.log(`${r.id}  ${r.role.padEnd(9)}  ${r.state.padEnd(7)}  ${r.name}  created ${r.createdAt}${r.expiresAt ? `  expires ${r.expiresAt}` : ''}${r.revokedAt ? `  revoked ${r.revokedAt}` : ''}`);
    });
  token
    .command('revoke')
    .description('revoke a token by id (or a unique prefix of 4+ characters) or name; a running edge refuses it from the next request')
    .requiredOption('--state-dir <dir>', 'state dir of the edge')
    .argument('<token>', 'id, id prefix or name')
    .action((which: string, flags: { stateDir: string }) => {
      const r = revokeServiceToken(flags.stateDir, which);
      console.log(`revoked ${r.role} token "${r.name}" (${r.id})`);
    });
}

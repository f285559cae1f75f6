/**
 * `fedmed site add|certify|revoke|list`: the federation admin's site management, either offline
 * on the coordinator's data dir (--data-dir, coordinator stopped) or through the API
 * (--coordinator URL --token ADMIN_TOKEN). Certifying and revoking sign with the admin key
 * (--admin-key FILE, kept on the admin's machine).
 */
import { Command } from 'commander';
import { loadAdminKey } from '../shared/secure/trust/adminKey.js';
import { showFingerprint } from '../shared/secure/trust/fingerprint.js';
import { adminTarget } from './admin/adminTarget.js';
import { addSite, certifySite, revokeSite, siteFingerprint } from './admin/federationAdmin.js';
import type { ApiTarget } from './apiClient.js';
import { intOption } from './parseNumber.js';

interface SiteFlags extends ApiTarget {
  dataDir?: string;
  json?: boolean;
  adminKey?: string;
}

function withTarget(cmd: Command): Command {
  return cmd
    .option('--data-dir <dir>', "the coordinator's data dir (offline, coordinator stopped)")
    .option('--coordinator <url>', 'coordinator URL (or FEDMED_COORDINATOR)')
    .option('--token <token>', 'admin API token (or FEDMED_TOKEN)')
    .option('--json', 'print JSON');
}

const adminKeyOf = (flags: SiteFlags) => {
  const path = flags.adminKey ?? process.env.FEDMED_ADMIN_KEY;
  return path ? loadAdminKey(path) : null;
};

export function siteCommand(): Command {
  const cmd = new Command('site').description("manage the federation's sites (federation admin)");
  withTarget(cmd.command('add').argument('<name>', 'site name (letters, digits, . _ -)').description('create a site and print its one-time join token'))
    .option('--admin-key <file>', "the federation admin key (or FEDMED_ADMIN_KEY): checks that the token names it")
    .action(async (name: string, flags: SiteFlags) => {
      const result = await addSite(await adminTarget(flags), name, adminKeyOf(flags) ?? undefined);
      if (flags.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      else console.log(`site ${result.name} created. One-time join token (give it to the site's IT team; it is shown only now):\n${result.token}`);
    });
  withTarget(cmd.command('certify').argument('<name>').description("certify the keys a site enrolled with, after comparing their fingerprint with what \"fedmed edge enroll\" printed at the site"))
    .requiredOption('--admin-key <file>', 'the federation admin key')
    .option('--fingerprint <fp>', 'the fingerprint the site printed (SHA256:...); certifies only if it matches')
    .option('--yes', 'certify without --fingerprint (you compared it by eye)')
    .option('--valid-days <n>', 'validity of the certificate', intOption('--valid-days', 1), 365)
    .action(async (name: string, flags: SiteFlags & { fingerprint?: string; yes?: boolean; validDays: number }) => {
      const r = await certifySite(await adminTarget(flags), adminKeyOf(flags)!, name, { fingerprint: flags.fingerprint, confirmed: flags.yes, days: flags.validDays });
      if (flags.json) process.stdout.write(`${JSON.stringify({ name, fingerprint: r.fingerprint, serial: r.certificate.body.serial, notAfter: r.certificate.body.notAfter })}\n`);
      else console.log(`site ${name} certified: keys ${showFingerprint(r.fingerprint)}, certificate ${r.certificate.body.serial}, valid until ${r.certificate.body.notAfter}`);
    });
  withTarget(cmd.command('revoke').argument('<name>').description('revoke a site: with --admin-key its certificate goes on a signed revocation list that every site enforces; the coordinator refuses it from now on'))
    .option('--admin-key <file>', 'the federation admin key (or FEDMED_ADMIN_KEY); without it only this coordinator refuses the site')
    .option('--reason <text>', 'why (recorded in the revocation list)')
    .action(async (name: string, flags: SiteFlags & { reason?: string }) => {
      const admin = adminKeyOf(flags);
      const r = await revokeSite(await adminTarget(flags), admin, name, flags.reason);
      if (flags.json) process.stdout.write(`${JSON.stringify({ name, revoked: true, revocationList: r.sequence })}\n`);
      else if (r.sequence !== null) console.log(`site ${name} revoked (revocation list ${r.sequence}, sent to every site)`);
      else console.log(`site ${name} revoked at the coordinator${admin ? ' (it had no certificate)' : '; give --admin-key to put it on the signed revocation list its peers enforce'}`);
    });
  withTarget(cmd.command('list').description('list sites')).action(async (flags: SiteFlags) => {
    const target = await adminTarget(flags);
    const rows = (await target.sites()).map((s) => ({ ...s, fingerprint: siteFingerprint(s), certified: !!s.certificate && !s.revoked }));
    if (flags.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
    else for (const r of rows) console.log(`${r.name.padEnd(20)} ${r.revoked ? 'revoked  ' : r.certified ? 'certified' : r.enrolled ? 'enrolled ' : 'pending  '} ${'online' in r && r.online ? 'online ' : 'offline'} ${r.fingerprint ? showFingerprint(r.fingerprint) : ''}`);
  });
  return cmd;
}

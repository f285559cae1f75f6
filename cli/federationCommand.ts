/**
 * `fedmed federation ...`: the federation admin's trust anchor and CKKS key sets, run on the
 * admin's machine (where the admin key and CKKS secret keys live, never on the coordinator):
 *   init                       make the admin key
 *   certify-coordinator        sign the coordinator's key for the URLs sites reach it at
 *   rotate-coordinator-key     make the coordinator switch to a new, certified key
 *   revoke-certificate         put any certificate serial on the signed revocation list
 *   show                       what the coordinator presents (admin key, its certificate, revocations)
 *   keys create|grant|list|decrypt   CKKS key sets (see cli/federationKeys.ts)
 */
import { Command } from 'commander';
import { writeFileAtomic } from '../shared/atomicFile.js';
import { createAdminKeyFile, loadAdminKey } from '../shared/secure/trust/adminKey.js';
import { keyFingerprint, showFingerprint } from '../shared/secure/trust/fingerprint.js';
import { adminTarget } from './admin/adminTarget.js';
import { certifyCoordinator, revokeSerials, rotateCoordinatorKey } from './admin/federationAdmin.js';
import { api, resolveTarget, type ApiTarget } from './apiClient.js';
import { createKeySet, decryptVersion, grantKeySet, readSecretKeyFile, type GrantResult } from './federationKeys.js';
import { intOption } from './parseNumber.js';

type TargetFlags = ApiTarget & { dataDir?: string; json?: boolean };

function target(cmd: Command): Command {
  return cmd.option('--coordinator <url>', 'coordinator URL (or FEDMED_COORDINATOR)').option('--token <token>', 'admin API token (or FEDMED_TOKEN)');
}

function offlineOrApi(cmd: Command): Command {
  return target(cmd).option('--data-dir <dir>', "the coordinator's data dir instead (offline, coordinator stopped)").option('--json', 'print JSON');
}

function adminKeyOption(cmd: Command): Command {
  return cmd.requiredOption('--admin-key <file>', 'the federation admin key (from "fedmed federation init")');
}

function printGrants(results: GrantResult[], json: boolean | undefined, extra: Record<string, unknown> = {}): void {
  if (json) return void process.stdout.write(`${JSON.stringify({ ...extra, sites: results })}\n`);
  for (const r of results) console.log(r.granted ? `  ${r.site}: key granted` : `  ${r.site}: skipped (${r.reason})`);
}

export function federationCommand(): Command {
  const cmd = new Command('federation').description('the federation admin: trust anchor, coordinator certificate, revocations, CKKS key sets');
  cmd
    .command('init')
    .description('make the federation admin key (Ed25519; keep it offline: it certifies the coordinator and every site)')
    .requiredOption('--admin-key-out <file>', 'where to write it (mode 0600; never overwritten)')
    .option('--json', 'print JSON')
    .action((flags: { adminKeyOut: string; json?: boolean }) => {
      const key = createAdminKeyFile(flags.adminKeyOut);
      if (flags.json) return void process.stdout.write(`${JSON.stringify({ adminKey: flags.adminKeyOut, publicKey: key.publicKeyB64, fingerprint: key.fingerprint })}\n`);
      console.log(`federation admin key written to ${flags.adminKeyOut} (keep it offline and backed up)\nfingerprint ${showFingerprint(key.fingerprint)} (every join token carries it)`);
    });
  adminKeyOption(
    offlineOrApi(
      cmd
        .command('certify-coordinator')
        .description("sign the coordinator's key (or the next key of a rotation) for the URLs sites reach it at")
        .option('--url <url...>', 'URL(s) sites use for the coordinator (default: --coordinator)')
        .option('--expect-key <key>', "refuse unless the coordinator's key is this one (its public key or SHA256 fingerprint, from its log)")
        .option('--valid-days <n>', 'validity of the certificate', intOption('--valid-days', 1), 365),
    ),
  ).action(async (flags: TargetFlags & { adminKey: string; url?: string[]; expectKey?: string; validDays: number }) => {
    const r = await certifyCoordinator(await adminTarget(flags), loadAdminKey(flags.adminKey), { urls: flags.url, expectKey: flags.expectKey, days: flags.validDays });
    if (flags.json) return void process.stdout.write(`${JSON.stringify({ publicKey: r.publicKey, fingerprint: r.fingerprint, serial: r.certificate.body.serial, urls: r.certificate.body.urls, notAfter: r.certificate.body.notAfter, rotated: r.rotated })}\n`);
    console.log(`coordinator key ${showFingerprint(r.fingerprint)} certified for ${r.certificate.body.urls.join(', ')} until ${r.certificate.body.notAfter} (certificate ${r.certificate.body.serial})${r.rotated ? '; the coordinator now uses this new key' : ''}`);
  });
  adminKeyOption(
    offlineOrApi(
      cmd
        .command('rotate-coordinator-key')
        .description('give the coordinator a new key: it makes the key, you certify it here, it switches; sites need nothing (they trust the admin key)')
        .option('--url <url...>', 'URL(s) for the new certificate (default: those of the current one)')
        .option('--revoke-old', 'also revoke the old certificate (when the old key may be compromised)')
        .option('--valid-days <n>', 'validity of the certificate', intOption('--valid-days', 1), 365),
    ),
  ).action(async (flags: TargetFlags & { adminKey: string; url?: string[]; revokeOld?: boolean; validDays: number }) => {
    const r = await rotateCoordinatorKey(await adminTarget(flags), loadAdminKey(flags.adminKey), { urls: flags.url, revokeOld: flags.revokeOld, days: flags.validDays });
    if (flags.json) return void process.stdout.write(`${JSON.stringify({ publicKey: r.publicKey, fingerprint: r.fingerprint, serial: r.certificate.body.serial, rotated: r.rotated, revokedSerial: r.revokedSerial ?? null })}\n`);
    console.log(`coordinator key rotated to ${showFingerprint(r.fingerprint)} (certificate ${r.certificate.body.serial})${r.revokedSerial ? `; old certificate ${r.revokedSerial} revoked` : ''}`);
  });
  adminKeyOption(
    offlineOrApi(cmd.command('revoke-certificate').argument('<serial>', 'certificate serial (32 hex digits)').description('put a certificate serial on the signed revocation list').requiredOption('--subject <text>', 'what it was issued to, for the record').option('--reason <text>', 'why')),
  ).action(async (serial: string, flags: TargetFlags & { adminKey: string; subject: string; reason?: string }) => {
    const r = await revokeSerials(await adminTarget(flags), loadAdminKey(flags.adminKey), [{ serial, subject: flags.subject, reason: flags.reason }]);
    if (flags.json) return void process.stdout.write(`${JSON.stringify(r)}\n`);
    console.log(`revocation list ${r.sequence} installed${r.revokedSites.length ? `; revoked sites: ${r.revokedSites.join(', ')}` : ''}`);
  });
  offlineOrApi(cmd.command('show').description('the admin key, coordinator certificate and revocation list the coordinator presents')).action(async (flags: TargetFlags) => {
    const v = await (await adminTarget(flags)).federation();
    if (flags.json) return void process.stdout.write(`${JSON.stringify(v)}\n`);
    console.log(`admin key:        ${v.adminPublicKey ? showFingerprint(keyFingerprint(v.adminPublicKey)) : 'none (not certified)'}`);
    console.log(`coordinator key:  ${showFingerprint(keyFingerprint(v.coordinatorPublicKey))}${v.nextCoordinatorPublicKey ? ` (rotation pending: ${showFingerprint(keyFingerprint(v.nextCoordinatorPublicKey))})` : ''}`);
    const c = v.coordinatorCertificate?.body;
    console.log(`certificate:      ${c ? `${c.serial}, ${c.urls.join(', ')}, until ${c.notAfter}` : 'none'}`);
    console.log(`revocation list:  ${v.revocations ? `${v.revocations.body.sequence} (${v.revocations.body.revoked.length} revoked)` : 'none'}`);
  });

  const keys = cmd.command('keys').description('CKKS key sets for security "ckks" experiments');
  adminKeyOption(
    target(
      keys
        .command('create')
        .description('make a CKKS key set, keep its secret key in a file, and give each certified site a copy wrapped to its certified encryption key')
        .requiredOption('--secret-key-out <file>', 'where to keep the secret key (mode 0600; needed to grant later sites and to decrypt models)')
        .option('--json', 'print JSON'),
    ),
  ).action(async (flags: ApiTarget & { adminKey: string; secretKeyOut: string; json?: boolean }) => {
    const { keySet, results } = await createKeySet(resolveTarget(flags), loadAdminKey(flags.adminKey), flags.secretKeyOut);
    if (!flags.json) console.log(`key set ${keySet} created; secret key in ${flags.secretKeyOut}`);
    printGrants(results, flags.json, { keySet });
  });
  adminKeyOption(
    target(
      keys
        .command('grant')
        .description('wrap the key set for certified sites that do not hold it yet (new sites, or sites whose encryption key changed)')
        .requiredOption('--secret-key <file>', 'the file written by "keys create"')
        .option('--site <name...>', 'only these sites (default: every eligible site not granted yet)')
        .option('--json', 'print JSON'),
    ),
  ).action(async (flags: ApiTarget & { adminKey: string; secretKey: string; site?: string[]; json?: boolean }) => {
    const file = readSecretKeyFile(flags.secretKey);
    printGrants(await grantKeySet(resolveTarget(flags), loadAdminKey(flags.adminKey), file, flags.site), flags.json, { keySet: file.keySet });
  });
  target(keys.command('list').description('list key sets and the sites holding each').option('--json', 'print JSON')).action(async (flags: ApiTarget & { json?: boolean }) => {
    const sets = await api<{ id: string; createdAt: string; sites: { site: string }[] }[]>(resolveTarget(flags), 'GET', '/v1/ckks/keysets');
    if (flags.json) return void process.stdout.write(`${JSON.stringify(sets)}\n`);
    for (const s of sets) console.log(`${s.id}  created ${s.createdAt}  sites: ${s.sites.map((x) => x.site).join(', ') || 'none'}`);
  });
  target(
    keys
      .command('decrypt')
      .description("decrypt a CKKS experiment's model version with the secret key (the coordinator cannot)")
      .requiredOption('--secret-key <file>', 'the file written by "keys create"')
      .requiredOption('--experiment <id>', 'experiment id')
      .requiredOption('--version-id <id>', "version id (e.g. the experiment's currentVersion)")
      .requiredOption('--out <file.fmp>', 'where to write the decrypted model'),
  ).action(async (flags: ApiTarget & { secretKey: string; experiment: string; versionId: string; out: string }) => {
    const bytes = await decryptVersion(resolveTarget(flags), readSecretKeyFile(flags.secretKey), flags.experiment, flags.versionId);
    writeFileAtomic(flags.out, bytes);
    console.log(`decrypted ${flags.versionId} to ${flags.out}`);
  });
  return cmd;
}

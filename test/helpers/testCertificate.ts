/**
 * A self-signed TLS certificate for 127.0.0.1, made with openssl for one test. Outside CI a
 * machine without openssl skips the test (returns null); in CI its absence is an error.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export function loopbackCertificate(dir: string, name: string): { cert: string; key: string } | null {
  const cert = join(dir, `${name}-cert.pem`);
  const key = join(dir, `${name}-key.pem`);
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  } catch {
    if (process.env.CI) throw new Error('openssl is needed to make the test certificate');
    console.log('      skipped: openssl is missing, so no test certificate (apt-get install openssl; required when CI is set)');
    return null;
  }
  return { cert, key };
}

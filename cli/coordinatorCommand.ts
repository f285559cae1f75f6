/** `fedmed coordinator start`: runs the coordinator until SIGTERM/SIGINT. */
import { Command } from 'commander';
import { reexecWithCoordinatorHeap } from './coordinatorHeap.js';
import { intOption } from './parseNumber.js';

export function coordinatorCommand(): Command {
  const cmd = new Command('coordinator').description('run the federation coordinator');
  cmd
    .command('start')
    .description('serve the REST API and the edge WebSocket endpoint on one port')
    .requiredOption('--data-dir <dir>', 'where the store, model blobs, keys and admin token live')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port (0 = any free port)', intOption('--port', 0), 8700)
    .option('--tls-cert <file>', 'PEM certificate: serve https/wss')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--log-level <level>', 'pino log level (fatal, error, warn, info, debug)', 'info')
    .action(async (flags: { dataDir: string; host: string; port: number; tlsCert?: string; tlsKey?: string; logLevel: string }) => {
      reexecWithCoordinatorHeap(); // returns only once the heap is set up for a coordinator
      const { startCoordinator } = await import('../coordinator/coordinatorServer.js');
      const c = await startCoordinator({ dataDir: flags.dataDir, host: flags.host, port: flags.port, tlsCert: flags.tlsCert, tlsKey: flags.tlsKey, logLevel: flags.logLevel });
      // One machine-readable line for scripts and tests: where it listens and where the admin token is.
      process.stdout.write(`${JSON.stringify({ event: 'listening', url: c.url, adminTokenFile: `${flags.dataDir}/admin.token` })}\n`);
      const shutdown = (signal: string): void => {
        c.app.log.info({ signal }, 'shutting down');
        void c.close(`coordinator shutting down (${signal})`).then(() => process.exit(0));
      };
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
      await new Promise(() => {}); // run until a signal arrives
    });
  return cmd;
}

import path from 'node:path';
import { Command, Option } from 'commander';
import { createLogger } from '../logger.js';

interface ServeFlags {
  dir: string;
  listen: string;
  htpasswd?: string;
  tlsCert?: string;
  tlsKey?: string;
  output: 'text' | 'json';
  quiet?: boolean;
}

async function serve(flags: ServeFlags): Promise<void> {
  // Loaded here so other commands do not pay for the server's modules.
  const { startRegistryServer } = await import('../registry-server/server.js');
  const stop = new AbortController();
  const signals = ['SIGINT', 'SIGTERM'] as const;
  let stoppedBy: string | undefined;
  const onSignal = (signal: string) => {
    stoppedBy = signal;
    stop.abort();
  };
  for (const signal of signals) process.once(signal, onSignal);
  const logger = createLogger(flags.quiet ? 'warn' : 'info');
  try {
    const dir = path.resolve(flags.dir);
    const server = await startRegistryServer({ dir, listen: flags.listen, htpasswd: flags.htpasswd, tlsCert: flags.tlsCert, tlsKey: flags.tlsKey, logger });
    // The address on stdout (for scripts: `--output json`), everything else on stderr.
    if (flags.output === 'json') process.stdout.write(`${JSON.stringify({ url: server.url, host: server.host, dir })}\n`);
    else process.stdout.write(`${server.url}\n`);
    logger.info(`registry: serving ${dir} at ${server.url}${flags.htpasswd ? ' (basic auth)' : ''}; Ctrl-C stops it`);
    await new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }));
    logger.info(`registry: ${stoppedBy}: finishing requests in flight, then stopping`);
    await server.close();
    logger.info('registry: stopped');
  } finally {
    for (const signal of signals) process.removeListener(signal, onSignal);
  }
}

/** `imgbuild registry serve`: the embedded registry. */
export function addRegistryCommand(program: Command): void {
  const registry = program.command('registry').summary('serve an OCI registry from a directory: registry serve');
  registry
    .command('serve')
    .summary('serve an OCI distribution registry from a directory')
    .description(
      'Serve the OCI distribution API (pull, push, referrers, tag lists, deletes) from\n' +
        'a directory. Every upload is checked against its digest and written atomically\n' +
        '(fsync, rename), so what was acknowledged survives a crash. One line per\n' +
        'request on stderr; SIGINT/SIGTERM finish requests in flight, then exit 0.',
    )
    .option('--dir <DIR>', 'where blobs, manifests and tags are kept (created if missing)', './registry-data')
    .option('--listen <ADDR:PORT>', 'address to listen on; port 0 picks a free one', '127.0.0.1:5000')
    .option('--htpasswd <FILE>', 'require basic auth from the users of this file (bcrypt entries: htpasswd -B)')
    .option('--tls-cert <FILE>', 'serve HTTPS with this PEM certificate chain (with --tls-key)')
    .option('--tls-key <FILE>', 'the PEM private key of --tls-cert')
    .addOption(new Option('-o, --output <FORMAT>', 'how to print the address on stdout').choices(['text', 'json']).default('text'))
    .option('-q, --quiet', 'do not log each request')
    .addHelpText(
      'after',
      `
Examples:
  imgbuild registry serve --dir /var/lib/registry --listen 0.0.0.0:5000
  imgbuild registry serve --listen 127.0.0.1:0 -o json     # a free port; prints {"url","host","dir"}
  htpasswd -cB users.htpasswd alice && imgbuild registry serve --htpasswd users.htpasswd \\
      --tls-cert server.crt --tls-key server.key --listen :5443

Plain HTTP is meant for loopback; elsewhere use TLS (clients refuse plain HTTP unless told
--insecure). Prints the registry's URL on stdout once it listens. See docs/registry.md.`,
    )
    .action(serve);
}

// The command line's entry point: the only module with side effects on import.
import { main } from './main.js';

// The `imgbuild` command (src/cli/imgbuild.sh) moved NODE_EXTRA_CA_CERTS aside so Node 20 does
// not parse it at start; every HTTPS connection here reads it from the environment itself, and
// the programs imgbuild starts (credential helpers, kubeconfig exec plugins) get it back.
if (process.env.IMGBUILD_EXTRA_CA_CERTS) {
  process.env.NODE_EXTRA_CA_CERTS = process.env.IMGBUILD_EXTRA_CA_CERTS;
  delete process.env.IMGBUILD_EXTRA_CA_CERTS;
}

// A closed pipe on stdout (`imgbuild inspect ... | head`) is the reader's choice, not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

main(process.argv).then(
  (code) => {
    process.exitCode = code;
    // On failure, work still in flight (a base fetch retrying in the background) must not hold the exit.
    if (code !== 0) process.exit(code);
  },
  () => {
    process.exitCode = 70;
  },
);

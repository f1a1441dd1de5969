// The command line's entry point: the only module with side effects on import.
import { main } from './main.js';

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

import assert from 'node:assert/strict';
import { test } from 'node:test';

test('the CLI module imports without side effects and offers its commands', async () => {
  const listenersBefore = process.stdout.listenerCount('error');
  const { buildProgram, main } = await import('../../src/cli/main.js');
  assert.equal(process.stdout.listenerCount('error'), listenersBefore, 'importing the CLI module installed a stdout handler');
  assert.equal(process.exitCode, undefined, 'importing the CLI module ran a command');
  assert.equal(typeof main, 'function');
  assert.deepEqual(buildProgram().commands.map((command) => command.name()), ['add', 'build', 'inspect', 'verify', 'runner-image', '__context', 'clean', 'registry', 'quickstart']);
});

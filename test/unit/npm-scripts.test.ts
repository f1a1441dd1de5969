// Every file or file pattern an npm script names exists: a script that points at test files
// nobody wrote "passes" by running nothing, or fails with a message about the wrong thing.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const scripts = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

/** Files a path argument names: itself, or the matches of a `*` in its last component. */
function filesNamed(argument: string): string[] {
  const directory = path.join(ROOT, path.dirname(argument));
  const name = path.basename(argument);
  if (!name.includes('*')) return existsSync(path.join(ROOT, argument)) ? [argument] : [];
  const pattern = new RegExp(`^${name.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return existsSync(directory) ? readdirSync(directory).filter((entry) => pattern.test(entry)) : [];
}

/** Arguments that look like repository paths: they contain a "/" and are not flags or URLs. */
function pathArguments(command: string): string[] {
  return command.split(/\s+/).filter((word) => word.includes('/') && !word.startsWith('-') && !word.includes(':'));
}

describe('package.json scripts', () => {
  for (const [name, command] of Object.entries(scripts)) {
    const paths = pathArguments(command);
    if (paths.length === 0) continue;
    test(`${name}: every path it names exists (${paths.join(', ')})`, () => {
      for (const argument of paths) assert.notDeepEqual(filesNamed(argument), [], `npm run ${name} names ${argument}, which matches no file`);
    });
  }

  test('test:cluster runs the cluster test scripts through the testbed runner', () => {
    const runner = readFileSync(path.join(ROOT, 'scripts/test-cluster.sh'), 'utf8');
    assert.match(scripts['test:cluster']!, /scripts\/test-cluster\.sh/);
    assert.match(runner, /testbed\/ci\.sh/);
    assert.match(readFileSync(path.join(ROOT, 'testbed/ci.sh'), 'utf8'), /test\/cluster\/\*\.sh/);
    assert.notDeepEqual(filesNamed('test/cluster/*.sh'), []);
  });
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GrowingFile } from '../../src/image/growing-file.js';

describe('GrowingFile', () => {
  test('a reader waits until the bytes it needs exist', async () => {
    const file = new GrowingFile('/tmp/x');
    let state: unknown;
    const waiting = file.waitFor(100).then((s) => (state = s));
    file.grew(50);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(state, undefined);
    file.grew(150);
    assert.deepEqual(await waiting, { available: 150, complete: false });
  });

  test('completion releases a reader that asked for more than the final size', async () => {
    const file = new GrowingFile('/tmp/x');
    const waiting = file.waitFor(1000);
    file.finish(10);
    assert.deepEqual(await waiting, { available: 10, complete: true });
  });

  test("the writer's failure reaches the reader", async () => {
    const file = new GrowingFile('/tmp/x');
    const waiting = file.waitFor(10);
    file.fail(new Error('disk full'));
    await assert.rejects(waiting, /disk full/);
  });
});

import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { describe, mock, test } from 'node:test';
import { abortAfterGrace, orAbort, throwIfAborted, withAbortReported } from '../../src/abort.js';
import { AbortedError, NotFoundError } from '../../src/errors.js';

describe('orAbort', () => {
  test('passes the value through and leaves no listener on the signal', async () => {
    const controller = new AbortController();
    assert.equal(await orAbort(Promise.resolve(7), controller.signal), 7);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
  });

  test('passes a rejection through and leaves no listener on the signal', async () => {
    const controller = new AbortController();
    await assert.rejects(orAbort(Promise.reject(new Error('boom')), controller.signal), /boom/);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
  });

  test('rejects with the reason as soon as the signal aborts, though the work never ends', async () => {
    const controller = new AbortController();
    const waiting = orAbort(new Promise(() => {}), controller.signal);
    const reason = new Error('stop');
    controller.abort(reason);
    await assert.rejects(waiting, (error) => error === reason);
  });

  test('an already aborted signal rejects at once', async () => {
    await assert.rejects(orAbort(new Promise(() => {}), AbortSignal.abort(new Error('early'))), /early/);
  });
});

describe('abortAfterGrace', () => {
  test('aborts only once the grace period has passed after the signal', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const controller = new AbortController();
      const delayed = abortAfterGrace(controller.signal, 5_000);
      controller.abort(new Error('stop'));
      mock.timers.tick(4_999);
      assert.equal(delayed.signal!.aborted, false);
      mock.timers.tick(1);
      assert.equal(delayed.signal!.aborted, true);
      assert.match((delayed.signal!.reason as Error).message, /stop/);
    } finally {
      mock.timers.reset();
    }
  });

  test('release drops the listener and a pending abort', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const controller = new AbortController();
      const untouched = abortAfterGrace(controller.signal, 5_000);
      untouched.release();
      assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
      const pending = abortAfterGrace(controller.signal, 5_000);
      controller.abort();
      pending.release();
      mock.timers.tick(10_000);
      assert.equal(pending.signal!.aborted, false);
    } finally {
      mock.timers.reset();
    }
  });
});

describe('abort reporting', () => {
  test('a failure after an abort is reported as AbortedError (name AbortError), with the reason as cause', async () => {
    const controller = new AbortController();
    const reason = new Error('interrupted (SIGINT)');
    controller.abort(reason);
    await assert.rejects(withAbortReported(Promise.reject(new Error('socket closed')), controller.signal, 'inspecting reg/app:1'), (error: unknown) => {
      assert.ok(error instanceof AbortedError);
      assert.equal(error.name, 'AbortError');
      assert.equal(error.message, 'inspecting reg/app:1 was aborted (interrupted (SIGINT))');
      assert.equal(error.cause, reason);
      return true;
    });
  });

  test('a failure without an abort stays what it was', async () => {
    await assert.rejects(withAbortReported(Promise.reject(new NotFoundError('no such image')), new AbortController().signal, 'x'), NotFoundError);
    assert.doesNotThrow(() => throwIfAborted(undefined, 'x'));
  });
});

// The log follower reopens a container's log from the last timestamp it printed; which lines of
// a stream are repeats decides whether a user sees every line of the build pod exactly once.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { resumedReader, type ResumePoint } from '../../src/kubernetes/run/follow.js';

const read = (resume: ResumePoint, lines: string[]) => {
  const reader = resumedReader(resume);
  return lines.map(reader).filter((line): line is string => line !== undefined);
};

describe('resumed log streams', () => {
  test('stderr and stdout lines whose timestamps do not rise are all printed in the first stream', () => {
    const resume: ResumePoint = { stamp: undefined, seenAtStamp: 0 };
    const lines = ['2026-12-01T02:30:01.000000200Z result', '2026-12-01T02:30:01.000000100Z pushed', '2026-12-01T02:30:01.000000300Z done'];
    assert.deepEqual(read(resume, lines), ['result', 'pushed', 'done']);
    assert.deepEqual(resume, { stamp: '2026-12-01T02:30:01.000000300Z', seenAtStamp: 1 });
  });

  test('a reopened stream skips what was printed before the resume point, and the lines at it already seen', () => {
    const resume: ResumePoint = { stamp: undefined, seenAtStamp: 0 };
    assert.deepEqual(read(resume, ['2026-12-01T00:00:01Z a', '2026-12-01T00:00:02Z b', '2026-12-01T00:00:02Z c']), ['a', 'b', 'c']);
    const again = ['2026-12-01T00:00:01Z a', '2026-12-01T00:00:02Z b', '2026-12-01T00:00:02Z c', '2026-12-01T00:00:02Z d', '2026-12-01T00:00:03Z e'];
    assert.deepEqual(read(resume, again), ['d', 'e']);
    assert.deepEqual(resume, { stamp: '2026-12-01T00:00:03Z', seenAtStamp: 1 });
  });

  test('lines without a timestamp are printed, and control sequences are removed', () => {
    const resume: ResumePoint = { stamp: undefined, seenAtStamp: 0 };
    assert.deepEqual(read(resume, ['plain', '2026-12-01T00:00:01Z \x1b[36mINFO\x1b[0m built']), ['plain', 'INFO built']);
  });
});

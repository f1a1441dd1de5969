import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseDockerfile } from '../../src/dockerfile/parser.js';
import { resolveDockerfile } from '../../src/dockerfile/resolve.js';
import type { ResolveOptions } from '../../src/dockerfile/types.js';
import { chooseEngine } from '../../src/engines/engine.js';
import { formatGoDuration, parseOwner, planFromDockerfile, runInstructions } from '../../src/plan/from-dockerfile.js';
import { planFromAdd } from '../../src/plan/from-add.js';
import type { Plan } from '../../src/plan/steps.js';

const COMMENT = 'buildkit.dockerfile.v0';

function plan(text: string, options: ResolveOptions = {}): Plan {
  return planFromDockerfile(resolveDockerfile(parseDockerfile(text, { file: 'Dockerfile' }), options), { context: '/ctx' });
}

function resolved(text: string) {
  return resolveDockerfile(parseDockerfile(text, { file: 'Dockerfile' }));
}

describe('Dockerfile -> plan', () => {
  test("the report's Dockerfile is a base and three steps", () => {
    assert.deepEqual(plan('FROM reg:5000/ones/plugin-host-node:v6.33.1\nUSER root\nWORKDIR /opt/app\nCOPY hello.txt /opt/app/hello.txt\n'), {
      base: 'reg:5000/ones/plugin-host-node:v6.33.1',
      baseWhere: 'Dockerfile:1',
      steps: [
        { kind: 'config', edits: { user: 'root' }, history: { createdBy: 'USER root', comment: COMMENT }, where: 'Dockerfile:2' },
        { kind: 'workdir', path: '/opt/app', history: { comment: COMMENT }, where: 'Dockerfile:3' },
        {
          kind: 'copy',
          items: [{ sources: ['hello.txt'], destination: '/opt/app/hello.txt', text: 'COPY hello.txt /opt/app/hello.txt' }],
          context: '/ctx',
          chown: undefined,
          chmod: undefined,
          destinations: 'docker',
          history: { createdBy: 'COPY hello.txt /opt/app/hello.txt # buildkit', comment: COMMENT },
          where: 'Dockerfile:4',
        },
      ],
    });
  });

  test('COPY flags: --chown names or numbers, octal or symbolic --chmod, in the history as written', () => {
    const [named, numeric, symbolic] = plan('FROM b\nCOPY --chown=app:staff --chmod=640 a b /d/\nCOPY --chown=10 a /x\nCOPY --chmod=u+x a /y\n').steps;
    assert.equal(named?.kind, 'copy');
    assert.deepEqual(named?.kind === 'copy' && [named.chown, named.chmod, named.history.createdBy], [{ names: 'app:staff' }, 0o640, 'COPY --chown=app:staff --chmod=640 a b /d/ # buildkit']);
    assert.deepEqual(numeric?.kind === 'copy' && numeric.chown, { uid: 10, gid: 10 });
    assert.equal(symbolic?.kind === 'copy' && typeof symbolic.chmod === 'object' && symbolic.chmod.kind, 'symbolic');
  });

  test('ADD unpacks local archives; .dockerignore patterns travel with COPY', () => {
    const steps = planFromDockerfile(resolved('FROM b\nADD a.tar /x/\nCOPY . /src\n'), { context: '/ctx', ignore: ['*.md'] }).steps;
    assert.deepEqual(steps.map((step) => step.kind === 'copy' && [step.unpackArchives, step.ignore]), [[true, ['*.md']], [undefined, ['*.md']]]);
  });

  test('COPY and ADD --exclude patterns travel with the step as written, and stay out of the history (dispatchCopy)', () => {
    const steps = plan('FROM b\nCOPY --exclude=*.txt --exclude=sub/skip dir/ /d/\nADD --exclude=*.md a /x/\nCOPY a /y\n').steps;
    assert.deepEqual(
      steps.map((step) => step.kind === 'copy' && [step.exclude, step.history.createdBy]),
      [
        [['*.txt', 'sub/skip'], 'COPY dir/ /d/ # buildkit'],
        [['*.md'], 'ADD a /x/ # buildkit'],
        [undefined, 'COPY a /y # buildkit'],
      ],
    );
  });

  test('a bad --exclude pattern is an error naming the line (patternmatcher.New)', () => {
    assert.throws(() => plan('FROM b\nCOPY --exclude=! a /a\n'), /Dockerfile:2:1: COPY --exclude: illegal exclusion pattern/);
    assert.throws(() => plan('FROM b\nADD --exclude=[ a /a\n'), /Dockerfile:2:1: ADD --exclude: /);
  });

  test('config instructions become edits with BuildKit history text; ONBUILD leaves none', () => {
    const steps = plan('FROM b\nENTRYPOINT ["/app"]\nCMD run --fast\nEXPOSE 80 53/UDP\nVOLUME /a /b\nSTOPSIGNAL SIGQUIT\nONBUILD COPY . /src\nMAINTAINER me\n').steps;
    assert.deepEqual(
      steps.map((step) => step.kind === 'config' && [step.edits, step.history?.createdBy]),
      [
        [{ entrypoint: ['/app'], keepCmd: false }, 'ENTRYPOINT ["/app"]'],
        [{ cmd: ['/bin/sh', '-c', 'run --fast'] }, 'CMD ["/bin/sh" "-c" "run --fast"]'],
        [{ expose: ['53/udp', '80/tcp'] }, 'EXPOSE map[53/udp:{} 80/tcp:{}]'],
        [{ volumes: ['/a', '/b'] }, 'VOLUME [/a /b]'],
        [{ stopSignal: 'SIGQUIT' }, 'STOPSIGNAL SIGQUIT'],
        [{ onBuild: ['COPY . /src'] }, undefined],
        [{ author: 'me' }, 'MAINTAINER me'],
      ],
    );
  });

  test('COPY from here-documents carries their (expanded unless quoted) content', () => {
    const [step] = plan('FROM b\nARG X=1\nCOPY <<EOF <<"RAW" /etc/\nx=$X\nEOF\ny=$X\nRAW\n').steps.slice(1);
    assert.deepEqual(step?.kind === 'copy' && step.items, [{ sources: ['EOF', 'RAW'], destination: '/etc/', text: 'COPY <<EOF <<"RAW" /etc/', heredocs: { EOF: 'x=1\n', RAW: 'y=$X\n' } }]);
  });

  test('EXPOSE ranges are expanded', () => {
    const [step] = plan('FROM b\nEXPOSE 8000-8002/udp 8001/udp\n').steps;
    assert.deepEqual(step?.kind === 'config' && step.edits.expose, ['8000/udp', '8001/udp', '8002/udp']);
  });

  test('SHELL changes how later shell-form commands run', () => {
    const steps = plan('FROM b\nSHELL ["/bin/bash", "-o", "pipefail", "-c"]\nCMD echo hi\n').steps;
    assert.deepEqual(steps[1]?.kind === 'config' && steps[1].edits.cmd, ['/bin/bash', '-o', 'pipefail', '-c', 'echo hi']);
  });

  test('ENTRYPOINT after CMD in the same stage keeps it', () => {
    const steps = plan('FROM b\nCMD ["x"]\nENTRYPOINT ["/e"]\n').steps;
    assert.equal(steps[1]?.kind === 'config' && steps[1].edits.keepCmd, true);
  });

  test('--target picks a stage and the stages it is built FROM, base first', () => {
    const result = plan('FROM img AS one\nENV A=1\nFROM one AS two\nENV B=2\nFROM two AS three\nENV C=3\n', { target: 'two' });
    assert.equal(result.base, 'img');
    assert.deepEqual(result.steps.map((step) => step.kind === 'config' && step.history?.createdBy), ['ENV A=1', 'ENV B=2']);
  });

  test('FROM scratch starts with the PATH BuildKit gives it', () => {
    const result = plan('FROM scratch\nCOPY a /\n');
    assert.equal(result.base, 'scratch');
    assert.deepEqual(result.scratchEnv, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
  });

  test('COPY --from reads an image, or the image a stage only names (through FROM chains), keeping the history BuildKit writes', () => {
    const steps = plan('FROM reg/tools:1 AS tools\nENV X=1\nFROM tools AS more\nFROM b\nCOPY --from=more /bin/tool /usr/bin/\nCOPY --from=reg/other:2 /etc/x /x\nCOPY --from=0 /a /a\n').steps;
    assert.deepEqual(
      steps.map((step) => step.kind === 'copy' && [step.fromImage, step.history.createdBy]),
      [
        ['reg/tools:1', 'COPY /bin/tool /usr/bin/ # buildkit'],
        ['reg/other:2', 'COPY /etc/x /x # buildkit'],
        ['reg/tools:1', 'COPY /a /a # buildkit'],
      ],
    );
  });

  test('COPY --from a stage that changes files carries that stage\'s own plan (its chain from its first base), to run before it is read', () => {
    const built = plan('FROM b AS x\nWORKDIR /w\nFROM x AS y\nCOPY a /a\nFROM c\nCOPY --from=y /a /a\nCOPY --from=x /w /w\n');
    assert.equal(built.base, 'c');
    const [fromY, fromX] = built.steps as Array<Extract<Plan['steps'][number], { kind: 'copy' }>>;
    assert.equal(fromY!.fromImage, 'stage y');
    assert.deepEqual(
      fromY!.fromStage?.steps.map((step) => [step.kind, step.where]),
      [
        ['workdir', 'Dockerfile:2'],
        ['copy', 'Dockerfile:4'],
      ],
    );
    assert.equal(fromY!.fromStage?.base, 'b');
    assert.equal(fromX!.fromImage, 'stage x');
    assert.deepEqual(fromX!.fromStage?.steps.map((step) => step.where), ['Dockerfile:2']);
    // A stage that only names an image is still read as that image.
    const named = plan('FROM tools:1 AS t\nENV A=1\nFROM c\nCOPY --from=t /a /a\n').steps[0] as Extract<Plan['steps'][number], { kind: 'copy' }>;
    assert.equal(named.fromImage, 'tools:1');
    assert.equal(named.fromStage, undefined);
  });

  test('what the direct engine cannot do yet is an error naming the line', () => {
    assert.throws(() => plan('FROM b\nRUN true\n'), /Dockerfile:2:1: RUN needs a container/);
    assert.throws(() => plan('FROM b\nCOPY https://example.invalid/f /f\n'), /Dockerfile:2:1: COPY cannot fetch a URL/);
    assert.throws(() => plan('FROM b\nADD git@example.invalid:x/y.git /src\n'), /Dockerfile:2:1: ADD of a URL is not supported/);
    assert.throws(() => plan('FROM b\nCOPY --chmod=u+q a /a\n'), /Dockerfile:2:1: .*u\+q/);
    assert.throws(() => plan('FROM b\nEXPOSE 80/xyz\n'), /Dockerfile:2:1: EXPOSE.*80\/xyz/);
    assert.throws(() => plan('FROM b\nVOLUME data\n'), /Dockerfile:2:1: VOLUME data is not an absolute path/);
  });
});

describe('engine choice', () => {
  test('auto sends RUN to Kaniko and says which line', () => {
    const build = resolved('FROM b\nCOPY a /a\nRUN make\nRUN make install\n');
    assert.deepEqual(chooseEngine('auto', runInstructions(build)), { engine: 'kaniko', reason: 'Dockerfile:3 is a RUN (and 1 more RUN), which needs a container' });
    assert.deepEqual(chooseEngine('auto', runInstructions(resolved('FROM b\nCOPY a /a\n'))), { engine: 'direct', reason: 'no RUN in the stages built' });
  });

  test('a RUN in a stage the target does not need does not count', () => {
    const build = resolveDockerfile(parseDockerfile('FROM b AS tools\nRUN make\nFROM b AS app\nCOPY a /a\n', { file: 'Dockerfile' }), { target: 'app' });
    assert.equal(chooseEngine('auto', runInstructions(build)).engine, 'direct');
  });

  test('--engine direct with RUN is an error naming the line', () => {
    assert.throws(() => chooseEngine('direct', runInstructions(resolved('FROM b\nRUN make\n'))), /Dockerfile:2: RUN needs a container/);
  });
});

describe('pieces', () => {
  test('Go durations as BuildKit history prints them', () => {
    assert.deepEqual([0, 30e9, 90e9, 3600e9, 1.5e9, 5e8].map(formatGoDuration), ['0s', '30s', '1m30s', '1h0m0s', '1.5s', '500ms']);
  });

  test('parseOwner: numbers alone mean the same gid; names are left to the image', () => {
    assert.deepEqual(parseOwner('1000'), { uid: 1000, gid: 1000 });
    assert.deepEqual(parseOwner('1000:50'), { uid: 1000, gid: 50 });
    assert.deepEqual(parseOwner('app'), { names: 'app' });
    assert.deepEqual(parseOwner('1000:staff'), { names: '1000:staff' });
  });

  test('add flags are a config step then one layer step, with the history add always wrote', () => {
    const result = planFromAdd({ from: 'b', adds: [{ source: 'h.txt', destination: '/opt/app/', text: 'h.txt:/opt/app/' }], edits: { user: 'root' }, chmod: 0o644 });
    assert.deepEqual(result.steps.map((step) => [step.kind, step.history && 'createdBy' in step.history ? step.history.createdBy : undefined]), [
      ['config', 'imgbuild: USER root'],
      ['copy', 'imgbuild add /opt/app/ --chmod 0644'],
    ]);
  });
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DockerfileError } from '../../src/dockerfile/errors.js';
import { parseDockerfile } from '../../src/dockerfile/parser.js';
import { normalizePlatform, predefinedArgs } from '../../src/dockerfile/platform-args.js';
import { parseGoDuration } from '../../src/dockerfile/healthcheck.js';
import { listBaseImages, resolveDockerfile, SCRATCH_ENV } from '../../src/dockerfile/resolve.js';
import type { ResolvedBuild, ResolveOptions, ResolvedInstruction } from '../../src/dockerfile/types.js';

function resolve(text: string, options: ResolveOptions = {}): ResolvedBuild {
  return resolveDockerfile(parseDockerfile(text), options);
}

/** The instruction without its position, for comparing as data. */
function strip(instruction: ResolvedInstruction): Record<string, unknown> {
  const { location: _location, original: _original, keyword: _keyword, ...rest } = instruction;
  return rest;
}

function lastStage(text: string, options: ResolveOptions = {}): Record<string, unknown>[] {
  const build = resolve(text, options);
  return (build.stages.at(-1)?.instructions ?? []).map(strip);
}

describe('expansion scoping', () => {
  test('a global ARG is seen by FROM but not inside the stage unless redeclared', () => {
    const build = resolve('ARG V=3.19\nFROM alpine:$V\nLABEL before=$V\nARG V\nLABEL after=$V\n');
    assert.equal(build.stages[0]?.base, 'alpine:3.19');
    assert.deepEqual(build.globalArgs, [{ name: 'V', value: '3.19' }]);
    assert.deepEqual(lastStage('ARG V=3.19\nFROM alpine:$V\nLABEL before=$V\nARG V\nLABEL after=$V\n'), [
      { kind: 'LABEL', pairs: [{ key: 'before', value: '' }] },
      { kind: 'ARG', args: [{ name: 'V', value: '3.19' }] },
      { kind: 'LABEL', pairs: [{ key: 'after', value: '3.19' }] },
    ]);
  });

  test('an ARG is visible from its line on', () => {
    assert.deepEqual(lastStage('FROM scratch\nWORKDIR /$A\nARG A=x\nWORKDIR /$A\n'), [
      { kind: 'WORKDIR', path: '/' },
      { kind: 'ARG', args: [{ name: 'A', defaultValue: 'x', value: 'x' }] },
      { kind: 'WORKDIR', path: '/x' },
    ]);
  });

  test('ENV beats an earlier ARG, even one given with --build-arg', () => {
    const text = 'FROM scratch\nARG A=arg\nENV A=env\nUSER $A\nARG A\nUSER $A\n';
    assert.deepEqual(lastStage(text, { buildArgs: {} }).filter((i) => i.kind === 'USER'), [
      { kind: 'USER', user: 'env' },
      { kind: 'USER', user: 'env' },
    ]);
    assert.deepEqual(lastStage('FROM scratch\nARG A\nENV A=env\nUSER $A\n', { buildArgs: { A: 'cli' } }).at(-1), { kind: 'USER', user: 'env' });
  });

  test('an ARG with a value after an ENV of the same name wins, as in BuildKit; the config Env keeps the ENV', () => {
    const build = resolve('FROM scratch\nENV A=env\nARG A=arg\nUSER $A\n');
    assert.deepEqual(build.stages[0]?.instructions.map(strip).at(-1), { kind: 'USER', user: 'arg' });
    assert.deepEqual(build.stages[0]?.finalEnv, [...SCRATCH_ENV, 'A=env']);
  });

  test('ENV a=1 b=$a uses the a from before the instruction', () => {
    assert.deepEqual(lastStage('FROM scratch\nENV a=0\nENV a=1 b=$a\nENV c=$a\n'), [
      { kind: 'ENV', pairs: [{ key: 'a', value: '0' }] },
      { kind: 'ENV', pairs: [{ key: 'a', value: '1' }, { key: 'b', value: '0' }] },
      { kind: 'ENV', pairs: [{ key: 'c', value: '1' }] },
    ]);
  });

  test('ARG a=1 b=$a sees the new a: ARG names are set one by one, and not expanded', () => {
    assert.deepEqual(lastStage('FROM scratch\nARG a=0\nARG a=1 b=$a $a=x\n').at(-1), {
      kind: 'ARG',
      args: [{ name: 'a', defaultValue: '1', value: '1' }, { name: 'b', defaultValue: '1', value: '1' }, { name: '$a', defaultValue: 'x', value: 'x' }],
    });
  });

  test('--build-arg overrides defaults, global and in the stage', () => {
    const text = 'ARG TAG=1\nFROM img:$TAG\nARG TAG\nARG OTHER=default\nLABEL t=$TAG o=$OTHER\n';
    const build = resolve(text, { buildArgs: { TAG: '2', OTHER: 'cli' } });
    assert.equal(build.stages[0]?.base, 'img:2');
    assert.deepEqual(build.stages[0]?.instructions.map(strip).at(-1), { kind: 'LABEL', pairs: [{ key: 't', value: '2' }, { key: 'o', value: 'cli' }] });
  });

  test('an ARG without default and without build arg is unset, not empty', () => {
    assert.deepEqual(lastStage('FROM scratch\nARG A\nUSER ${A-unset}:${A:-empty}\n').at(-1), { kind: 'USER', user: 'unset:empty' });
  });

  test('a stage-level default wins over the global value; a bare ARG takes the global one', () => {
    assert.deepEqual(lastStage('ARG A=global\nFROM scratch\nARG A=stage\nUSER $A\n').at(-1), { kind: 'USER', user: 'stage' });
    assert.deepEqual(lastStage('ARG A=global\nFROM scratch\nARG A\nUSER $A\n').at(-1), { kind: 'USER', user: 'global' });
  });

  test('global ARGs see earlier global ARGs and the platform args', () => {
    const build = resolve('ARG A=x\nARG B=$A-$TARGETARCH\nFROM img:$B\n', { targetPlatform: 'linux/arm64' });
    assert.equal(build.stages[0]?.base, 'img:x-arm64');
  });

  test('base image ENV is visible, and stage ENV lists it first in the final Env', () => {
    const text = 'FROM golang:1.22\nWORKDIR $GOPATH/src\nENV PATH=/app:$PATH\n';
    const build = resolve(text, { baseImageEnv: { 'golang:1.22': ['PATH=/usr/bin', 'GOPATH=/go'] } });
    assert.deepEqual(build.stages[0]?.instructions.map(strip)[0], { kind: 'WORKDIR', path: '/go/src' });
    assert.deepEqual(build.stages[0]?.finalEnv, ['PATH=/app:/usr/bin', 'GOPATH=/go']);
  });

  test('FROM scratch starts with BuildKit\'s default PATH', () => {
    assert.deepEqual(resolve('FROM scratch\nENV A=$PATH\n').stages[0]?.finalEnv, [...SCRATCH_ENV, `A=${SCRATCH_ENV[0]!.slice(5)}`]);
  });

  test('a stage built FROM another inherits its ENV and its ARG values', () => {
    const text = 'FROM scratch AS base\nARG NAME=joe\nENV GREETING=hi\nFROM base\nUSER $GREETING-$NAME\n';
    assert.deepEqual(lastStage(text).at(-1), { kind: 'USER', user: 'hi-joe' });
  });

  test('the escape directive applies to expansion', () => {
    assert.deepEqual(lastStage('# escape=`\nFROM scratch\nENV P=C:\\dir\\`$HOME\n').at(-1), { kind: 'ENV', pairs: [{ key: 'P', value: 'C:\\dir\\$HOME' }] });
  });
});

describe('which words are expanded', () => {
  test('COPY sources, dest, --chown and --chmod (not --exclude); RUN, CMD, ENTRYPOINT, SHELL and HEALTHCHECK are left alone', () => {
    const text = [
      'FROM scratch',
      'ARG D=/dst U=1000 M=755 X=*.md',
      'COPY --chown=$U:$U --chmod=$M --exclude=$X src/$D $D/',
      'RUN echo $D',
      'CMD echo $D',
      'ENTRYPOINT ["echo", "$D"]',
      'SHELL ["/bin/sh", "-c", "$D"]',
      'HEALTHCHECK CMD test -d $D',
      'MAINTAINER $U',
      '',
    ].join('\n');
    const [, copy, run, cmd, entrypoint, shell, health, maintainer] = lastStage(text);
    assert.deepEqual(copy, {
      kind: 'COPY',
      sources: [{ path: 'src//dst' }],
      dest: '/dst/',
      link: false,
      parents: false,
      exclude: ['$X'],
      keepGitDir: false,
      flags: [{ name: 'chown', value: '1000:1000' }, { name: 'chmod', value: '755' }, { name: 'exclude', value: '$X' }],
      chown: '1000:1000',
      chmod: '755',
    });
    assert.deepEqual(run, { kind: 'RUN', command: { form: 'shell', args: ['echo $D'] }, heredocs: [], flags: [] });
    assert.deepEqual(cmd, { kind: 'CMD', command: { form: 'shell', args: ['echo $D'] } });
    assert.deepEqual(entrypoint, { kind: 'ENTRYPOINT', command: { form: 'json', args: ['echo', '$D'] } });
    assert.deepEqual(shell, { kind: 'SHELL', shell: ['/bin/sh', '-c', '$D'] });
    assert.deepEqual(health, { kind: 'HEALTHCHECK', test: ['CMD-SHELL', 'test -d $D'] });
    assert.deepEqual(maintainer, { kind: 'MAINTAINER', name: '$U' });
  });

  test('EXPOSE splits expanded values into words; VOLUME, STOPSIGNAL, LABEL keys are expanded', () => {
    const text = 'FROM scratch\nARG P="80 443" K=key S=SIGINT\nEXPOSE $P 53/udp\nVOLUME ["/$K"]\nSTOPSIGNAL $S\nLABEL $K=v\n';
    assert.deepEqual(lastStage(text).slice(1), [
      { kind: 'EXPOSE', ports: ['80', '443', '53/udp'], exposedPorts: ['80/tcp', '443/tcp', '53/udp'] },
      { kind: 'VOLUME', paths: ['/key'] },
      { kind: 'STOPSIGNAL', signal: 'SIGINT' },
      { kind: 'LABEL', pairs: [{ key: 'key', value: 'v' }] },
    ]);
  });

  test('EXPOSE gives the ExposedPorts keys BuildKit writes: ranges expanded, protocol lower-cased, host part dropped', () => {
    const [expose] = lastStage('FROM scratch\nEXPOSE 8000-8002/UDP 0.0.0.0:8080:80 9000:90/sctp 7-7\n');
    assert.deepEqual((expose as { exposedPorts: string[] }).exposedPorts, ['8000/udp', '8001/udp', '8002/udp', '80/tcp', '90/sctp', '7/tcp']);
  });

  test('COPY heredoc bodies expand variables but keep quotes; a quoted delimiter keeps everything', () => {
    const text = 'FROM scratch\nARG N=world\nCOPY <<EOF <<"RAW" /x/\necho "hello $N" \\$N\nEOF\n$N\nRAW\n';
    const copy = lastStage(text)[1] as { sources: { path: string; heredoc?: { content: string } }[] };
    assert.deepEqual(copy.sources.map((source) => [source.path, source.heredoc?.content]), [
      ['EOF', 'echo "hello world" $N\n'],
      ['RAW', '$N\n'],
    ]);
  });

  test('ADD options', () => {
    const text = 'FROM scratch\nADD --checksum=sha256:24454f --keep-git-dir --unpack=false --link https://example.invalid/x.tar /x\n';
    const add = lastStage(text)[0] as Record<string, unknown>;
    assert.deepEqual([add.kind, add.checksum, add.keepGitDir, add.unpack, add.link], ['ADD', 'sha256:24454f', true, false, true]);
  });

  test('HEALTHCHECK durations become nanoseconds', () => {
    const [check] = lastStage('FROM scratch\nHEALTHCHECK --interval=1m30s --timeout=500ms --start-period=2s --start-interval=1s --retries=5 CMD ["true"]\n');
    assert.deepEqual(check, {
      kind: 'HEALTHCHECK',
      test: ['CMD', 'true'],
      interval: 90e9,
      timeout: 500e6,
      startPeriod: 2e9,
      startInterval: 1e9,
      retries: 5,
    });
    assert.deepEqual(lastStage('FROM scratch\nHEALTHCHECK NONE\n'), [{ kind: 'HEALTHCHECK', test: ['NONE'] }]);
  });

  test('ONBUILD records the trigger text unexpanded', () => {
    assert.deepEqual(lastStage('FROM scratch\nONBUILD COPY $A /app\n'), [{ kind: 'ONBUILD', trigger: 'COPY $A /app' }]);
  });
});

describe('stages and --target', () => {
  const multi = [
    'FROM alpine AS base', //          0
    'FROM base AS build', //           1
    'RUN make',
    'FROM scratch AS assets', //       2
    'FROM busybox AS unrelated', //    3
    'FROM scratch AS final', //        4
    'COPY --from=build /out /out',
    'COPY --from=2 /a /a',
    'COPY --from=nginx:1 /etc/nginx /etc/nginx',
    '',
  ].join('\n');

  test('the last stage by default, with the stages it depends on, in order', () => {
    const build = resolve(multi);
    assert.equal(build.target, 4);
    assert.deepEqual(build.stages.map((stage) => [stage.index, stage.name, stage.base, stage.baseStage, stage.dependsOn]), [
      [0, 'base', 'alpine', undefined, []],
      [1, 'build', 'base', 0, [0]],
      [2, 'assets', 'scratch', undefined, []],
      [4, 'final', 'scratch', undefined, [1, 2]],
    ]);
    const copies = build.stages.at(-1)!.instructions as { from?: string; fromStage?: number }[];
    assert.deepEqual(copies.map((copy) => [copy.from, copy.fromStage]), [['build', 1], ['2', 2], ['nginx:1', undefined]]);
  });

  test('--target picks a stage by name, case-insensitively', () => {
    assert.deepEqual(resolve(multi, { target: 'BUILD' }).stages.map((stage) => stage.index), [0, 1]);
    assert.deepEqual(resolve(multi, { target: 'unrelated' }).stages.map((stage) => stage.index), [3]);
  });

  test('COPY --from may name a later stage or index', () => {
    const build = resolve('FROM scratch AS a\nCOPY --from=1 /x /x\nCOPY --from=later /y /y\nFROM scratch AS later\n', { target: 'a' });
    assert.deepEqual(build.stages.map((stage) => [stage.index, stage.dependsOn]), [[0, [1]], [1, []]]);
  });

  test('FROM matches a stage name exactly (stage names are lower-case)', () => {
    assert.equal(resolve('FROM scratch AS base\nFROM base\n').stages.at(-1)?.baseStage, 0);
    assert.equal(resolve('FROM scratch AS base\nFROM Base\n').stages.at(-1)?.baseStage, undefined);
  });

  test('a duplicate stage name is a warning and the later stage wins lookups', () => {
    const build = resolve('FROM scratch AS a\nLABEL first=1\nFROM scratch AS a\nLABEL second=1\nFROM scratch\nCOPY --from=a / /\n');
    assert.deepEqual(build.stages.map((stage) => stage.index), [1, 2]);
    assert.match(build.warnings[0]?.message ?? '', /duplicate stage name "a"/);
  });

  test('RUN --mount from= is a dependency too', () => {
    const build = resolve('FROM scratch AS tools\nFROM alpine\nRUN --mount=type=bind,from=tools,target=/t ls\n');
    assert.deepEqual(build.stages.map((stage) => stage.index), [0, 1]);
  });

  test('stages not selected are not expanded (their errors do not matter)', () => {
    const build = resolve('FROM scratch AS broken\nUSER ${NEEDED:?}\nFROM scratch\n');
    assert.deepEqual(build.stages.map((stage) => stage.index), [1]);
  });

  test('listBaseImages names the external images of the selected stages', () => {
    const parsed = parseDockerfile('ARG V=1\nFROM --platform=linux/arm64 alpine:$V AS a\nFROM a\nFROM scratch\nCOPY --from=a / /\nFROM unused\n');
    assert.deepEqual(listBaseImages(parsed, { target: 'a' }), [{ stage: 0, name: 'alpine:1', platform: 'linux/arm64' }]);
    assert.deepEqual(listBaseImages(parsed), [{ stage: 3, name: 'unused' }]);
  });

  test('build args that no selected ARG declares are reported, proxies and platform args are not', () => {
    const build = resolve('ARG A\nFROM scratch\nARG B\n', { buildArgs: { A: '1', B: '2', C: '3', HTTP_PROXY: 'x', TARGETARCH: 'y' } });
    assert.deepEqual(build.unusedBuildArgs, ['C']);
  });
});

const errors: [name: string, text: string, options: ResolveOptions, line: number, message: RegExp][] = [
  ['unknown target', 'FROM scratch AS a\n', { target: 'b' }, 0, /target stage "b" could not be found/],
  ['required variable', 'FROM scratch\nUSER ${WHO:?set WHO}\n', {}, 2, /USER: WHO: set WHO/],
  ['bad substitution', 'FROM scratch\nWORKDIR ${A\n', {}, 2, /missing '}'/],
  ['blank base', 'ARG IMG\nFROM $IMG\n', {}, 2, /base name \(\$IMG\) should not be blank/],
  ['copy from itself', 'FROM scratch AS a\nCOPY --from=a / /\n', {}, 2, /circular dependency between stages: a -> a/],
  ['copy from an index out of range', 'FROM scratch\nCOPY --from=1 / /\n', {}, 2, /invalid stage index 1/],
  ['circular --from', 'FROM scratch AS a\nCOPY --from=b / /\nFROM scratch AS b\nCOPY --from=a / /\n', {}, 4, /circular dependency between stages: a -> b -> a/],
  ['circular --from in stages the target does not need', 'FROM scratch AS a\nCOPY --from=b / /\nFROM scratch AS b\nCOPY --from=a / /\nFROM scratch\n', {}, 4, /circular dependency/],
  ['a variable in --from', 'ARG S=a\nFROM scratch AS a\nFROM scratch\nCOPY --from=$S / /\n', {}, 4, /variable expansion is not supported for --from/],
  ['empty --platform', 'ARG P\nFROM --platform=$P scratch\n', {}, 2, /empty platform value/],
  ['bad duration', 'FROM scratch\nHEALTHCHECK --interval=5 CMD x\n', {}, 2, /invalid duration "5"/],
  ['too short duration', 'FROM scratch\nHEALTHCHECK --timeout=10us CMD x\n', {}, 2, /cannot be less than 1ms/],
  ['EXPOSE of a name', 'FROM scratch\nARG P=http\nEXPOSE $P\n', {}, 3, /EXPOSE: invalid containerPort: http/],
  ['EXPOSE of a bad protocol', 'FROM scratch\nEXPOSE 80/icmp\n', {}, 2, /invalid proto: icmp/],
  ['EXPOSE of a reversed range', 'FROM scratch\nEXPOSE 90-80\n', {}, 2, /invalid containerPort: 90-80/],
  ['EXPOSE past 65535', 'FROM scratch\nEXPOSE 70000\n', {}, 2, /invalid containerPort: 70000/],
  ['negative retries', 'FROM scratch\nHEALTHCHECK --retries=-1 CMD x\n', {}, 2, /cannot be negative/],
];

describe('resolve errors', () => {
  for (const [name, text, options, line, message] of errors) {
    test(name, () => {
      assert.throws(
        () => resolve(text, options),
        (error: unknown) => {
          assert.ok(error instanceof DockerfileError, String(error));
          assert.match(error.message, message);
          if (line) assert.equal(error.position?.line, line, error.message);
          assert.ok(error.hint, 'says how to fix it');
          return true;
        },
      );
    });
  }

  test('a COPY --from stage in a target-less file with an unused broken stage still works', () => {
    assert.doesNotThrow(() => resolve('FROM scratch AS x\nCOPY --from=nope / /\nFROM scratch\n'));
  });
});

describe('platform args', () => {
  test('predefined args as BuildKit sets them', () => {
    assert.deepEqual(predefinedArgs('linux/arm/v6', 'linux/amd64'), {
      BUILDPLATFORM: 'linux/amd64', BUILDOS: 'linux', BUILDARCH: 'amd64', BUILDVARIANT: '',
      TARGETPLATFORM: 'linux/arm/v6', TARGETOS: 'linux', TARGETARCH: 'arm', TARGETVARIANT: 'v6',
    });
  });

  const normalized: [string, string][] = [
    ['linux/arm64/v8', 'linux/arm64'],
    ['linux/aarch64', 'linux/arm64'],
    ['linux/arm', 'linux/arm/v7'],
    ['linux/x86_64', 'linux/amd64'],
    ['Linux/AMD64', 'linux/amd64'],
    ['linux/riscv64', 'linux/riscv64'],
  ];
  for (const [input, expected] of normalized) {
    test(`${input} -> ${expected}`, () => {
      const platform = normalizePlatform(input);
      assert.equal([platform.os, platform.architecture, platform.variant].filter(Boolean).join('/'), expected);
    });
  }

  test('a bad platform is an error', () => assert.throws(() => normalizePlatform('linux'), /invalid platform/));
});

describe('parseGoDuration', () => {
  const table: [string, number | undefined][] = [
    ['0', 0], ['1ns', 1], ['1.5s', 1.5e9], ['2h45m', 9900e9], ['300ms', 300e6], ['1us', 1000], ['2\u00b5s', 2000], ['3\u03bcs', 3000], ['.5m', 30e9],
    ['5', undefined], ['', undefined], ['1d', undefined], ['s', undefined],
  ];
  for (const [input, expected] of table) test(`${JSON.stringify(input)} -> ${expected}`, () => assert.equal(parseGoDuration(input), expected));
});

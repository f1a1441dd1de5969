// NODE_EXTRA_CA_CERTS as Node users set it: a CA trusted only through that variable, for a
// TLS registry that needs credentials (distribution 2.8, htpasswd) and for an ADD of an HTTPS
// URL. Run as users run it: the `imgbuild` command npm links (the shell launcher, which moves
// the variable aside so Node 20 does not parse the bundle at start), and node on the bundle.
// The credential helper is a script on PATH that records the environment it was started with.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https, { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { resolveCluster } from '../../src/kubernetes/config.js';
import { describeResult, ensureCliBuilt, runCli, type CliOptions, type CliResult } from '../helpers/cli.js';
import { pushBaseImage, tokenKubeconfig } from '../helpers/fixtures.js';
import { startRegistry, testCertificates, type RunningRegistry } from '../helpers/registry.js';
import { tagDigest } from '../helpers/tools.js';

describe('NODE_EXTRA_CA_CERTS is trusted, and handed on to the programs imgbuild starts', () => {
  let registry: RunningRegistry;
  let workDir: string;
  let binDir: string;
  let dockerConfigDir: string;
  let seenEnvFile: string;
  let fileServer: Server;
  let fileUrl: string;
  const fileContent = 'fetched over TLS\n';

  before(async () => {
    [registry, workDir] = await Promise.all([startRegistry({ tls: true, auth: true }), mkdtemp(path.join(tmpdir(), 'imgbuild-extra-ca-test-')), ensureCliBuilt()]);
    await pushBaseImage(registry, 'base/app:1');
    await writeFile(path.join(workDir, 'hello.txt'), 'hello\n');
    binDir = path.join(workDir, 'bin');
    await mkdir(binDir);
    // A credential helper that answers with the registry's credentials and writes down what
    // it saw of the two variables.
    seenEnvFile = path.join(workDir, 'helper-env');
    const answer = JSON.stringify({ ServerURL: registry.host, Username: registry.auth!.username, Secret: registry.auth!.password });
    await writeFile(
      path.join(binDir, 'docker-credential-imgbuild-test-env'),
      ['#!/bin/sh', 'read -r server', `printf 'NODE_EXTRA_CA_CERTS=%s IMGBUILD_EXTRA_CA_CERTS=%s\\n' "\${NODE_EXTRA_CA_CERTS-unset}" "\${IMGBUILD_EXTRA_CA_CERTS-unset}" >> '${seenEnvFile}'`, `printf '%s' '${answer}'`, ''].join('\n'),
    );
    await chmod(path.join(binDir, 'docker-credential-imgbuild-test-env'), 0o755);
    dockerConfigDir = path.join(workDir, 'docker');
    await mkdir(dockerConfigDir);
    await writeFile(path.join(dockerConfigDir, 'config.json'), JSON.stringify({ credHelpers: { [registry.host]: 'imgbuild-test-env' } }));

    const certificates = await testCertificates();
    const [cert, key] = await Promise.all([readFile(certificates.serverCertFile), readFile(certificates.serverKeyFile)]);
    fileServer = createServer({ cert, key }, (request, response) => {
      if (request.url !== '/files/greeting.txt') return void response.writeHead(404).end();
      response.writeHead(200).end(fileContent);
    });
    await new Promise<void>((resolve) => fileServer.listen(0, '127.0.0.1', () => resolve()));
    fileUrl = `https://127.0.0.1:${(fileServer.address() as AddressInfo).port}/files/greeting.txt`;
  });
  after(async () => {
    fileServer?.close();
    await registry?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  /** The CA reaches imgbuild only through NODE_EXTRA_CA_CERTS (or not at all): no certs.d, a system bundle without it. */
  function options(extraCa: string | undefined, launcher: boolean): CliOptions {
    return {
      cwd: workDir,
      launcher,
      env: { NODE_EXTRA_CA_CERTS: extraCa, SSL_CERT_FILE: '/etc/ssl/certs/ca-certificates.crt', DOCKER_CONFIG: dockerConfigDir, PATH: `${binDir}:${process.env.PATH}` },
    };
  }

  function add(tag: string, cliOptions: CliOptions): Promise<CliResult> {
    return runCli(['add', '--from', `${registry.host}/base/app:1`, '--add', 'hello.txt:/opt/hello.txt', '--to', `${registry.host}/dest/app:${tag}`], cliOptions);
  }

  async function assertPushed(tag: string, result: CliResult): Promise<void> {
    assert.equal(result.code, 0, describeResult(result));
    const printed = /@(sha256:[0-9a-f]{64})$/m.exec(result.stdout)?.[1];
    assert.equal(await tagDigest(registry, `dest/app:${tag}`), printed);
  }

  async function lastSeenEnv(): Promise<string | undefined> {
    const lines = (await readFile(seenEnvFile, 'utf8').catch(() => '')).trim().split('\n');
    return lines.at(-1);
  }

  test('the imgbuild command, linked as npm links it: the registry is trusted, the helper sees the variable as the user set it', async () => {
    const { caFile } = await testCertificates();
    const result = await add('launcher', options(caFile, true));
    await assertPushed('launcher', result);
    assert.equal(await lastSeenEnv(), `NODE_EXTRA_CA_CERTS=${caFile} IMGBUILD_EXTRA_CA_CERTS=unset`);
  });

  test('node on the bundle: the registry client adds NODE_EXTRA_CA_CERTS to the CAs it trusts', async () => {
    const { caFile } = await testCertificates();
    await assertPushed('bundle', await add('bundle', options(caFile, false)));
  });

  test('without the variable the same registry is refused: the CA came from it alone', async () => {
    const result = await add('untrusted', options(undefined, true));
    assert.equal(result.code, 1, describeResult(result));
    assert.match(result.stderr, /certificate/i, describeResult(result));
    assert.equal(await tagDigest(registry, 'dest/app:untrusted'), undefined);
  });

  test('the launcher keeps the file from Node at start: an unreadable one gets imgbuild\'s warning, not Node\'s', async () => {
    const missing = path.join(workDir, 'no-such-bundle.pem');
    const result = await add('unreadable', options(missing, true));
    // Node 20 reads the file at start and says "Ignoring extra certs from ..."; imgbuild reads
    // it only for a TLS connection, and goes on without it as Node does.
    assert.doesNotMatch(result.stderr, /Ignoring extra certs/, describeResult(result));
    assert.match(result.stderr, new RegExp(`warning: ignoring the extra CA certificates in ${missing} \\(NODE_EXTRA_CA_CERTS\\)`), describeResult(result));
    assert.equal(result.code, 1, describeResult(result));
  });

  test('an ADD of an HTTPS URL trusts it too', async () => {
    const { caFile } = await testCertificates();
    const context = path.join(workDir, 'add-url');
    await mkdir(context, { recursive: true });
    await writeFile(path.join(context, 'Dockerfile'), `FROM ${registry.host}/base/app:1\nADD --checksum=sha256:${createHash('sha256').update(fileContent).digest('hex')} ${fileUrl} /opt/greeting.txt\n`);
    const result = await runCli(['build', context, '--to', `${registry.host}/dest/app:url`], options(caFile, true));
    await assertPushed('url', result);
  });
});

describe('a kubeconfig cluster without a CA of its own', () => {
  test('gets Node\'s roots and NODE_EXTRA_CA_CERTS, which the launcher kept from Node\'s default trust', async () => {
    const certificates = await testCertificates();
    const [cert, key] = await Promise.all([readFile(certificates.serverCertFile), readFile(certificates.serverKeyFile)]);
    const server = createServer({ cert, key }, (_request, response) => void response.writeHead(200, { 'content-type': 'application/json' }).end('{"kind":"APIVersions"}'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const dir = await mkdtemp(path.join(tmpdir(), 'imgbuild-extra-ca-kube-'));
    try {
      const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const file = path.join(dir, 'config');
      await writeFile(file, tokenKubeconfig(url));
      /** GET /api with the TLS options client-node derives from the kubeconfig: the status, or the TLS error. */
      const get = async (env: NodeJS.ProcessEnv): Promise<string> => {
        const options: https.RequestOptions = {};
        await resolveCluster({ kubeconfig: file, env }).kubeConfig.applyToHTTPSOptions(options);
        return new Promise((resolve) => {
          https.get(`${url}/api`, { ...options, agent: false }, (response) => {
            response.resume();
            resolve(String(response.statusCode));
          }).on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
        });
      };
      assert.equal(await get({ HOME: dir, NODE_EXTRA_CA_CERTS: certificates.caFile }), '200');
      assert.equal(await get({ HOME: dir }), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    } finally {
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// The registry client's HTTP transport (src/registry/transport.ts, over node:http) against a
// real registry, through the fault proxy where a behaviour needs an answer the registry does
// not give on its own (a redirect): connections go back to the pool whatever way an answer
// is consumed, and GET follows redirects, dropping credentials when the origin changes.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, afterEach, before, describe, test } from 'node:test';
import { RegistryClient } from '../../src/registry/client.js';
import { Transport } from '../../src/registry/transport.js';
import { startFaultProxy, type RunningFaultProxy } from '../helpers/fault-proxy.js';
import { pushBaseImage } from '../helpers/fixtures.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';

const MANIFEST_ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

describe('registry transport (real registry behind a proxy)', () => {
  let registry: RunningRegistry;
  let proxy: RunningFaultProxy;
  let elsewhere: RunningFaultProxy;
  let layerDigest: string;
  let transport: Transport;

  before(async () => {
    registry = await startRegistry();
    [proxy, elsewhere] = await Promise.all([startFaultProxy(registry.host), startFaultProxy(registry.host)]);
    await pushBaseImage(registry, 'base/app:1');
    const manifest = JSON.parse(await (await fetch(`http://${registry.host}/v2/base/app/manifests/1`, { headers: { accept: MANIFEST_ACCEPT } })).text()) as {
      layers: Array<{ digest: string }>;
    };
    layerDigest = manifest.layers[0]!.digest;
  });
  afterEach(() => {
    transport?.close();
    proxy.reset();
    elsewhere.reset();
  });
  after(async () => {
    await Promise.all([proxy?.stop(), elsewhere?.stop()]);
    await registry?.stop();
  });

  const url = (host: string, path: string) => new URL(`http://${host}${path}`);

  test('answers dumped, read as text or streamed give their connection back: 60 requests over 2 connections', { timeout: 30_000 }, async () => {
    transport = new Transport({ certificates: async () => [], insecure: false, connectionsPerHost: 2 });
    for (let i = 0; i < 20; i++) {
      // A HEAD answer and a small body arrive whole at once; they must still be read to their end.
      const head = await transport.request({ url: url(proxy.host, `/v2/base/app/blobs/${layerDigest}`), method: 'HEAD', headers: {} });
      assert.equal(head.statusCode, 200);
      await head.body.dump();
      const missing = await transport.request({ url: url(proxy.host, '/v2/base/app/manifests/no-such-tag'), method: 'GET', headers: {} });
      assert.equal(missing.statusCode, 404);
      assert.match(await missing.body.text(), /MANIFEST_UNKNOWN/);
      const blob = await transport.request({ url: url(proxy.host, `/v2/base/app/blobs/${layerDigest}`), method: 'GET', headers: {} });
      const hash = createHash('sha256');
      for await (const chunk of blob.body) hash.update(chunk as Buffer);
      assert.equal(`sha256:${hash.digest('hex')}`, layerDigest);
    }
    assert.equal(proxy.log.length, 60);
    assert.ok(proxy.connectionsAccepted() <= 2, `the proxy accepted ${proxy.connectionsAccepted()} connections; kept-alive ones should have been reused`);
  });

  test('the first GET finds the scheme and the auth challenge itself: no GET /v2/ before it', async () => {
    const client = new RegistryClient(proxy.host);
    try {
      await client.getManifest('base/app', '1');
      await client.headBlob('base/app', layerDigest as `sha256:${string}`);
    } finally {
      await client.close();
    }
    assert.deepEqual(proxy.log.map((entry) => `${entry.method} ${entry.kind}`), ['GET manifest', 'HEAD blob']);
  });

  test('an upload as the first request still asks GET /v2/ first (a body is not sent to learn the challenge)', async () => {
    const client = new RegistryClient(proxy.host);
    try {
      await client.uploadBlob('base/app', `sha256:${createHash('sha256').update('x').digest('hex')}`, 1, () => Readable.from([Buffer.from('x')]));
    } finally {
      await client.close();
    }
    assert.deepEqual(proxy.log.map((entry) => `${entry.method} ${entry.kind}`), ['GET api-root', 'POST upload-start', 'PUT upload-complete']);
  });

  test('GET follows a redirect to another origin without the Authorization header', async () => {
    transport = new Transport({ certificates: async () => [], insecure: false });
    const blobPath = `/v2/base/app/blobs/${layerDigest}`;
    proxy.failNext({ method: 'GET', kind: 'blob', status: 307, headers: { location: `http://${elsewhere.host}${blobPath}` } });
    const response = await transport.request({ url: url(proxy.host, blobPath), method: 'GET', headers: { authorization: 'Bearer secret-token' } });
    assert.equal(response.statusCode, 200);
    const bytes = Buffer.from(await response.body.arrayBuffer());
    assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, layerDigest);
    assert.deepEqual(proxy.log.map((entry) => [entry.status, entry.authorized]), [[307, true]]);
    assert.deepEqual(elsewhere.log.map((entry) => [entry.status, entry.authorized]), [[200, false]]);
  });

  test('a redirect within the same origin keeps the Authorization header; PUT is never redirected', async () => {
    transport = new Transport({ certificates: async () => [], insecure: false });
    const blobPath = `/v2/base/app/blobs/${layerDigest}`;
    proxy.failNext({ method: 'GET', kind: 'blob', status: 302, headers: { location: blobPath } });
    const response = await transport.request({ url: url(proxy.host, blobPath), method: 'GET', headers: { authorization: 'Bearer secret-token' } });
    await response.body.dump();
    assert.equal(response.statusCode, 200);
    assert.deepEqual(proxy.log.map((entry) => [entry.status, entry.authorized]), [[302, true], [200, true]]);

    proxy.failNext({ method: 'PUT', kind: 'manifest', status: 307, headers: { location: `http://${elsewhere.host}/v2/base/app/manifests/2` } });
    const put = await transport.request({ url: url(proxy.host, '/v2/base/app/manifests/2'), method: 'PUT', headers: {}, body: '{}' });
    await put.body.dump();
    assert.equal(put.statusCode, 307);
    assert.equal(elsewhere.log.length, 0);
  });
});

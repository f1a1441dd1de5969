// The HTTP/1.1 client against real servers: Node's http server for the usual exchanges, and raw
// TCP servers for framings and faults Node's server does not produce (answers cut into single
// bytes, bodies ended by the connection's end, bytes after an answer).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { Http1Client, type Http1Response } from '../../src/registry/http1.js';

const servers: Array<{ close(): unknown }> = [];
after(() => {
  for (const server of servers) server.close();
});

async function httpServer(handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<{ url: string; server: Server; connections: () => number }> {
  const server = createHttpServer(handler);
  let connections = 0;
  server.on('connection', () => connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push({ close: () => { server.closeAllConnections(); server.close(); } });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, connections: () => connections };
}

/** A TCP server that answers each request head it reads with `answer(n)`, n counting every request it got. */
async function rawServer(answer: (index: number, socket: Socket) => void): Promise<{ url: string; connections: () => number }> {
  let connections = 0;
  let index = 0;
  const server = createTcpServer((socket) => {
    connections++;
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1');
      while (buffered.includes('\r\n\r\n')) {
        buffered = buffered.slice(buffered.indexOf('\r\n\r\n') + 4);
        answer(index++, socket);
      }
    });
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => connections };
}

function client(connectionsPerOrigin = 4, idleTimeoutMs = 10_000): Http1Client {
  return new Http1Client({ connectionsPerOrigin, idleTimeoutMs, tlsOptions: async () => ({}) });
}

async function text(response: Http1Response): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of response.body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

const get = (http: Http1Client, url: string, headers: Record<string, string> = {}) => http.request({ url: new URL(url), method: 'GET', headers });

describe('Http1Client', () => {
  test('keeps one connection for requests one after another; repeated headers come as arrays', async () => {
    const { url, connections } = await httpServer((request, response) => {
      response.setHeader('x-twice', ['a', 'b']);
      response.end(`${request.method} ${request.url} ${request.headers['x-asked']}`);
    });
    const http = client();
    for (let i = 0; i < 20; i++) {
      const response = await get(http, `${url}/v2/thing?n=${i}`, { 'x-asked': String(i) });
      assert.equal(response.statusCode, 200);
      assert.deepEqual(response.headers['x-twice'], ['a', 'b']);
      assert.equal(await text(response), `GET /v2/thing?n=${i} ${i}`);
    }
    assert.equal(connections(), 1);
    http.close();
  });

  test('a chunked answer cut into single bytes, then the next answer on the same connection', async () => {
    const body = 'chunked body: ' + 'x'.repeat(300);
    const { url, connections } = await rawServer((index, socket) => {
      const chunks = `${(14).toString(16)};ext=1\r\n${body.slice(0, 14)}\r\n${(body.length - 14).toString(16)}\r\n${body.slice(14)}\r\n0\r\nx-trailer: 1\r\n\r\n`;
      const answer = Buffer.from(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}`);
      if (index > 0) {
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond`);
        return;
      }
      let offset = 0;
      const next = () => {
        if (offset < answer.length) socket.write(answer.subarray(offset, ++offset), () => setImmediate(next));
      };
      next();
    });
    const http = client();
    assert.equal(await text(await get(http, `${url}/a`)), body);
    assert.equal(await text(await get(http, `${url}/b`)), 'second');
    assert.equal(connections(), 1);
    http.close();
  });

  test('a body without length ends with the connection; 100 Continue is skipped; HEAD and 204 have no body', async () => {
    const { url, connections } = await rawServer((index, socket) => {
      if (index === 0) socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n');
      else if (index === 1) socket.write('HTTP/1.1 204 No Content\r\n\r\n');
      else socket.end('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end');
    });
    const http = client(1);
    const head = await http.request({ url: new URL(`${url}/h`), method: 'HEAD', headers: {} });
    assert.equal(head.headers['content-length'], '999');
    assert.equal(await text(head), '');
    assert.equal((await get(http, `${url}/n`)).statusCode, 204);
    assert.equal(await text(await get(http, `${url}/c`)), 'until the end');
    assert.equal(connections(), 1);
    assert.equal(await text(await get(http, `${url}/c`)).catch(() => 'refused'), 'until the end', 'a new connection after the server closed the last');
    http.close();
  });

  test('stream bodies: chunked without content-length, as they are with it; buffers and strings whole', async () => {
    const { url } = await httpServer(async (request, response) => {
      const hash = createHash('sha256');
      for await (const chunk of request) hash.update(chunk as Buffer);
      response.end(`${request.headers['transfer-encoding'] ?? 'length ' + request.headers['content-length']} ${hash.digest('hex')}`);
    });
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const sha = createHash('sha256').update(data).digest('hex');
    const pieces = () => Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]);
    const http = client();
    const put = (body: Buffer | string | Readable, headers: Record<string, string> = {}) => http.request({ url: new URL(`${url}/up`), method: 'PUT', headers, body }).then(text);
    assert.equal(await put(pieces()), `chunked ${sha}`);
    assert.equal(await put(pieces(), { 'content-length': String(data.length) }), `length ${data.length} ${sha}`);
    assert.equal(await put(data, { 'content-length': String(data.length) }), `length ${data.length} ${sha}`);
    assert.equal(await put('été', { 'content-length': '5' }), `length 5 ${createHash('sha256').update('été').digest('hex')}`);
    http.close();
  });

  test('buffers and strings get their Content-Length, a POST without body a zero one; other schemes are refused', async () => {
    const { url } = await httpServer(async (request, response) => {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      response.end(`${request.method} ${request.headers['content-length'] ?? 'none'} ${request.headers['transfer-encoding'] ?? 'none'} ${Buffer.concat(chunks).toString()}`);
    });
    const http = client();
    const send = (method: string, body?: Buffer | string) => http.request({ url: new URL(`${url}/x`), method, headers: {}, body }).then(text);
    assert.equal(await send('PUT', Buffer.from('four')), 'PUT 4 none four');
    assert.equal(await send('PATCH', 'été'), 'PATCH 5 none été');
    assert.equal(await send('POST'), 'POST 0 none ');
    assert.equal(await send('GET'), 'GET none none ');
    await assert.rejects(http.request({ url: new URL('ftp://127.0.0.1/x'), method: 'GET', headers: {} }), /unsupported URL scheme ftp:/);
    http.close();
  });

  test('a large answer read slowly arrives whole', async () => {
    const data = randomBytes(20 * 1024 * 1024);
    const { url } = await httpServer((_request, response) => response.end(data));
    const http = client();
    const response = await get(http, `${url}/big`);
    const hash = createHash('sha256');
    for await (const chunk of response.body) {
      hash.update(chunk as Buffer);
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(hash.digest('hex'), createHash('sha256').update(data).digest('hex'));
    http.close();
  });

  test('an answer before the upload is sent (401) stops the upload; the next request gets a fresh connection', async () => {
    const { url, connections } = await httpServer((request, response) => {
      if (request.url === '/up') {
        response.writeHead(401, { 'content-length': '6', connection: 'close' });
        response.end('denied');
        return;
      }
      response.end('ok');
    });
    const http = client(1);
    let produced = 0;
    const endless = new Readable({
      read() {
        produced += 65536;
        this.push(Buffer.alloc(65536));
      },
    });
    const refused = await http.request({ url: new URL(`${url}/up`), method: 'PUT', headers: {}, body: endless });
    assert.equal(refused.statusCode, 401);
    assert.equal(await text(refused), 'denied');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(endless.destroyed, 'the body stream was stopped');
    assert.ok(produced < 64 * 1024 * 1024, `stopped early (${produced} bytes read)`);
    assert.equal(await text(await get(http, `${url}/next`)), 'ok');
    assert.equal(connections(), 2);
    http.close();
  });

  test('at most connectionsPerOrigin connections; the requests beyond wait for one', async () => {
    let open = 0;
    let most = 0;
    const { url } = await httpServer((_request, response) => {
      open++;
      most = Math.max(most, open);
      setTimeout(() => {
        open--;
        response.end('done');
      }, 20);
    });
    const http = client(2);
    const answers = await Promise.all(Array.from({ length: 7 }, (_, i) => get(http, `${url}/${i}`).then(text)));
    assert.deepEqual(answers, Array(7).fill('done'));
    assert.equal(most, 2);
    http.close();
  });

  test('abort while waiting for the answer, and while reading its body', async () => {
    const { url } = await httpServer((request, response) => {
      if (request.url === '/slow-head') return; // never answers
      response.writeHead(200, { 'content-length': '100' });
      response.write('partial'); // the rest never comes
    });
    const http = client();
    const early = new AbortController();
    setTimeout(() => early.abort(), 30);
    await assert.rejects(http.request({ url: new URL(`${url}/slow-head`), method: 'GET', headers: {}, signal: early.signal }), { name: 'AbortError' });
    const late = new AbortController();
    const response = await http.request({ url: new URL(`${url}/slow-body`), method: 'GET', headers: {}, signal: late.signal });
    setTimeout(() => late.abort(), 30);
    await assert.rejects(text(response), { name: 'AbortError' });
    const already = new AbortController();
    already.abort();
    await assert.rejects(http.request({ url: new URL(`${url}/never-sent`), method: 'GET', headers: {}, signal: already.signal }), { name: 'AbortError' });
    http.close();
  });

  test('silence past the idle timeout fails with ETIMEDOUT; a body cut short fails with ECONNRESET', { timeout: 10_000 }, async () => {
    const silent = await rawServer(() => {});
    const slow = client(4, 100);
    await assert.rejects(get(slow, `${silent.url}/silent`), { code: 'ETIMEDOUT' });
    slow.close();
    const cut = await rawServer((_index, socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
    const http = client();
    const response = await get(http, `${cut.url}/cut`);
    await assert.rejects(text(response), { code: 'ECONNRESET' });
    assert.equal(response.body.complete, false);
    http.close();
  });

  test('malformed answers are errors, not guesses', async () => {
    const { url } = await rawServer((index, socket) => {
      if (index === 0) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!');
      else if (index === 1) socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
      else socket.write('HTTP/1.1 200 OK\r\na header line without its colon\r\nContent-Length: 0\r\n\r\n');
    });
    const http = client(1);
    await assert.rejects(get(http, `${url}/a`), { code: 'HPE_INVALID' });
    await assert.rejects(get(http, `${url}/b`).then(text), { code: 'HPE_INVALID' });
    await assert.rejects(get(http, `${url}/c`, { 'x-bad': 'a\r\nx-injected: 1' }), { code: 'ERR_INVALID_CHAR' });
    await assert.rejects(get(http, `${url}/d`), { code: 'HPE_INVALID' });
    http.close();
  });

  test('close() ends idle connections at once and those in use when their answer has been read', async () => {
    let endedByClient = 0;
    const server = createTcpServer((socket) => {
      socket.on('end', () => endedByClient++);
      socket.on('error', () => {});
      socket.once('data', (chunk) => {
        // /slow gets the rest of its body only after the client has been closed.
        if (!chunk.toString('latin1').startsWith('GET /slow ')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        else {
          socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nla');
          setTimeout(() => socket.write('te'), 100);
        }
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    servers.push(server);
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const http = client(2);
    const [fast, slow] = await Promise.all([get(http, `${url}/fast`), get(http, `${url}/slow`)]);
    assert.equal(await text(fast!), 'ok');
    http.close();
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(endedByClient, 1, 'the idle connection was not closed');
    assert.equal(await text(slow!), 'late');
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(endedByClient, 2, 'the connection in use was kept after its answer');
  });

  test('a connection the server closed while idle is not reused', async () => {
    const { url, connections } = await rawServer((_index, socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      setTimeout(() => socket.end(), 20);
    });
    const http = client(1);
    assert.equal(await text(await get(http, url)), 'ok');
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(await text(await get(http, url)), 'ok');
    assert.equal(connections(), 2);
    http.close();
  });
});

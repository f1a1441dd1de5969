import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mergeScopes, parseChallenges, tokenFromResponse, tokenRequest } from '../../src/registry/auth.js';
import { DEFAULT_RETRY, retryDelayMs } from '../../src/registry/http.js';

describe('parseChallenges', () => {
  test('a Bearer challenge with realm, service and scope', () => {
    assert.deepEqual(parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"'), [
      { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull' } },
    ]);
  });
  test('several challenges in one header, and quoted commas', () => {
    const challenges = parseChallenges('Bearer realm="https://a/token",scope="repository:x:pull,push", Basic realm="Registry Realm"');
    assert.equal(challenges.length, 2);
    assert.equal(challenges[0]?.params.scope, 'repository:x:pull,push');
    assert.deepEqual(challenges[1], { scheme: 'basic', params: { realm: 'Registry Realm' } });
  });
  test('several headers, unquoted values, escapes', () => {
    const challenges = parseChallenges(['Basic realm=simple', 'Bearer realm="a\\"b"']);
    assert.deepEqual(challenges.map((c) => [c.scheme, c.params.realm]), [['basic', 'simple'], ['bearer', 'a"b']]);
  });
  test('nothing to parse', () => {
    assert.deepEqual(parseChallenges(undefined), []);
  });
});

describe('scopes and tokens', () => {
  test('mergeScopes joins actions per repository', () => {
    assert.deepEqual(mergeScopes(['repository:a:pull'], ['repository:a:push', 'repository:b:pull'], ['repository:a:pull']), [
      'repository:a:pull,push',
      'repository:b:pull',
    ]);
  });
  test('tokenRequest sends Basic credentials and every scope', () => {
    const request = tokenRequest({ scheme: 'bearer', params: { realm: 'https://auth/token', service: 'reg' } }, ['repository:a:pull', 'repository:b:pull,push'], {
      username: 'u',
      password: 'p',
    });
    const url = new URL(request.url);
    assert.equal(request.method, 'GET');
    assert.equal(url.searchParams.get('service'), 'reg');
    assert.deepEqual(url.searchParams.getAll('scope'), ['repository:a:pull', 'repository:b:pull,push']);
    assert.equal(request.headers.authorization, `Basic ${Buffer.from('u:p').toString('base64')}`);
  });
  test('an identity token uses the refresh_token grant', () => {
    const request = tokenRequest({ scheme: 'bearer', params: { realm: 'https://auth/token', service: 'reg' } }, ['repository:a:pull'], { identityToken: 'rt' });
    assert.equal(request.method, 'POST');
    const form = new URLSearchParams(request.body);
    assert.equal(form.get('grant_type'), 'refresh_token');
    assert.equal(form.get('refresh_token'), 'rt');
    assert.equal(form.get('scope'), 'repository:a:pull');
  });
  test('token or access_token', () => {
    assert.equal(tokenFromResponse({ token: 't1' }).token, 't1');
    assert.equal(tokenFromResponse({ access_token: 't2', expires_in: 300 }).expiresInSeconds, 300);
    assert.throws(() => tokenFromResponse({}), /without a token/);
  });
});

describe('retryDelayMs', () => {
  test('honours Retry-After seconds and dates', () => {
    assert.equal(retryDelayMs(1, DEFAULT_RETRY, '3'), 3000);
    assert.equal(retryDelayMs(1, DEFAULT_RETRY, new Date(10_000).toUTCString(), 8_000), 2000);
  });
  test('grows exponentially within the cap', () => {
    for (let attempt = 1; attempt <= 8; attempt++) {
      const delay = retryDelayMs(attempt, DEFAULT_RETRY);
      const ceiling = Math.min(DEFAULT_RETRY.baseDelayMs * 2 ** (attempt - 1), DEFAULT_RETRY.maxDelayMs);
      assert.ok(delay >= ceiling / 2 && delay <= ceiling, `attempt ${attempt}: ${delay}`);
    }
  });
});

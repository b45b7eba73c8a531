// Drives `acql serve` with the npm `gigya` SDK (3.0.1), through its documented hooks:
// the instance's `httpRequest` replaced by a proxy, and the `new Gigya(apiKey, dc, proxy)`
// overload. The proxy sends exactly what the SDK's own transport sends (the `request`
// library's `form:` encoding of the already-signed parameters), only to http://127.0.0.1.
//
// Environment (set by tests/server.rs): ACQL_URL, ACQL_API_KEY, ACQL_USER_KEY, ACQL_SECRET,
// GIGYA_MODULES (the node_modules folder holding `gigya` and `request`).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const modules = process.env.GIGYA_MODULES || path.join(__dirname, 'node_modules');
const { Gigya } = require(path.join(modules, 'gigya'));
const request = require(path.join(modules, 'request'));

const url = process.env.ACQL_URL;
const apiKey = process.env.ACQL_API_KEY;
const userKey = process.env.ACQL_USER_KEY;
const secret = process.env.ACQL_SECRET;

// Retried codes would make a failing test sleep; count calls to prove nothing was retried.
Gigya.RETRY_DELAY = 1;
let calls = 0;

function proxy(endpoint, host, params, headers) {
  calls++;
  assert.equal(host, 'accounts.us1.gigya.com');
  return new Promise((resolve, reject) => {
    request.post(`${url}/${endpoint}`, { form: params, headers }, (error, response, body) => {
      if (error) return reject(error);
      try {
        resolve(JSON.parse(body));
      } catch (e) {
        reject(new Error(`not JSON (${response.statusCode}): ${body}`));
      }
    });
  });
}

function signedClient() {
  const gigya = new Gigya(apiKey, 'us1', userKey, secret);
  gigya.httpRequest = proxy;
  return gigya;
}

test('lite imports, a full account update and searches, all signed', async () => {
  const gigya = signedClient();
  for (let i = 0; i < 7; i++) {
    const r = await gigya.request('accounts.importLiteAccount', {
      email: `Node${i}@Example.com`,
      profile: { firstName: `N${i}`, age: 30 + i, nickname: null },
      subscriptions: { 'news.letter': { email: { isSubscribed: i % 2 === 0, tags: ['sdk'] } } },
      data: { source: 'node sdk', rank: i },
    });
    assert.equal(r.errorCode, 0);
  }

  const full = await gigya.request('accounts.importFullAccount', {
    profile: { email: 'node0@example.com', firstName: 'Full' },
    data: { car: 'Suzuki', colour: 'red' },
  });
  assert.equal(full.errorCode, 0);
  assert.match(full.UID, /^[0-9a-f]{32}$/);

  const set = await gigya.accounts.setAccountInfo({ UID: full.UID, data: { car: 'Suzuki Alto', colour: null } });
  assert.equal(set.errorCode, 0);
  const info = await gigya.accounts.getAccountInfo({ UID: full.UID });
  assert.deepEqual(info.data, { car: 'Suzuki Alto' });
  assert.equal(info.profile.firstName, 'Full');

  // A search with a cursor, followed to the end.
  let page = await gigya.accounts.search({
    query: "SELECT email, data.rank FROM emailAccounts WHERE data.source = 'node sdk' ORDER BY data.rank LIMIT 3",
    openCursor: true,
  });
  const emails = page.results.map((r) => r.email);
  assert.equal(page.totalCount, 7);
  while (page.nextCursorId) {
    page = await gigya.accounts.search({ cursorId: page.nextCursorId });
    emails.push(...page.results.map((r) => r.email));
  }
  assert.deepEqual(emails, [0, 1, 2, 3, 4, 5, 6].map((i) => `node${i}@example.com`));

  // The SDK signs `false` and `0` as empty strings; the server tolerates it.
  const linked = await gigya.accounts.search({
    query: "SELECT UID, subscriptions FROM emailAccounts WHERE email = 'node0@example.com'",
    openCursor: false,
  });
  assert.equal(linked.results[0].UID, full.UID);
  assert.equal(linked.results[0].subscriptions['news.letter'].email.isSubscribed, true);

  const subscribed = await gigya.accounts.search({
    query: 'SELECT count(*) FROM emailAccounts WHERE subscriptions.`news.letter`.email.isSubscribed = true',
  });
  assert.equal(subscribed.results[0]['count(*)'], 4);
});

test('errors are thrown once, with the vendor code, and never retried', async () => {
  const gigya = signedClient();
  const before = calls;
  await assert.rejects(gigya.accounts.search({ query: 'SELECT * FROM accounts WHERE' }), (e) => {
    assert.equal(e.errorCode, 400006);
    assert.match(e.message, /line 1, column/);
    return true;
  });
  await assert.rejects(gigya.accounts.getAccountInfo({ UID: 'nobody' }), (e) => e.errorCode === 403005);
  await assert.rejects(gigya.request('accounts.importLiteAccount', { email: 'nope' }), (e) => {
    assert.equal(e.errorCode, 400006);
    assert.ok(e.gigyaResponse.validationErrors.length > 0);
    return true;
  });
  assert.equal(calls - before, 3);

  const wrong = new Gigya(apiKey, 'us1', userKey, Buffer.from('not the secret').toString('base64'));
  wrong.httpRequest = proxy;
  await assert.rejects(wrong.accounts.search({ query: 'SELECT * FROM accounts' }), (e) => e.errorCode === 403003);
});

test('the proxy constructor overload with per-call credentials', async () => {
  const gigya = new Gigya(apiKey, 'us1', proxy);
  const r = await gigya.accounts.search({ query: 'SELECT count(*) FROM accounts', userKey, secret });
  assert.equal(r.errorCode, 0);
  assert.equal(r.results[0]['count(*)'], 1);
  await assert.rejects(gigya.accounts.search({ query: 'SELECT count(*) FROM accounts' }), (e) => e.errorCode === 400002);
});

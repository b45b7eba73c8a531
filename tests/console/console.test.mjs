// The query console in a real browser (Debian's chromium through playwright-core).
// Run by tests/console.rs, which starts the `acql serve` processes and passes:
//   ACQL_OPEN_URL    a loopback console without credentials (open), on a generated store
//   ACQL_LOGIN_URL   a loopback console with credentials ACQL_USER_KEY / ACQL_SECRET
//   ACQL_PUBLIC_URL  a console listening on 0.0.0.0 without credentials (must refuse)
//   ACQL_DOC_COUNT   documents in the store behind ACQL_OPEN_URL
//   CHROMIUM         the browser binary; ACQL_SCREENSHOTS a directory for screenshots (optional)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT_CORE || 'playwright-core');

const OPEN = process.env.ACQL_OPEN_URL;
const LOGIN = process.env.ACQL_LOGIN_URL;
const PUBLIC = process.env.ACQL_PUBLIC_URL;
const DOCS = Number(process.env.ACQL_DOC_COUNT);
const SHOTS = process.env.ACQL_SCREENSHOTS || '';

let context;
let page;
let profile;
const pageErrors = [];

before(async () => {
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'acql-chromium-'));
  // A fresh profile directory per run (playwright passes it as --user-data-dir).
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1280, height: 800 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  page = context.pages()[0] || await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
});

after(async () => {
  if (context) await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
});

async function shot(name) {
  if (SHOTS) await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

/** Replaces the editor's text and runs it with Ctrl-Enter. */
async function runQuery(q) {
  await page.fill('#editor-input', q);
  await page.focus('#editor-input');
  const done = page.waitForResponse((r) => r.url().endsWith('/accounts.search'));
  await page.keyboard.press('Control+Enter');
  await done;
  await page.waitForFunction(() => !document.getElementById('run').disabled);
}

const cellTexts = (col) => page.$$eval(
  '#results table.grid',
  (tables, name) => {
    const t = tables[0];
    if (!t) return [];
    const heads = [...t.querySelectorAll('thead th')].map((h) => h.textContent);
    const k = heads.indexOf(name);
    return [...t.querySelectorAll(':scope > tbody > tr')].map((tr) => tr.children[k].textContent);
  },
  col,
);

test('the open console loads on loopback with the catalog', async () => {
  await page.goto(OPEN);
  await page.waitForSelector('#app:not([hidden])');
  await page.waitForSelector('#catalog li code');
  const specs = await page.$$eval('#catalog li code', (xs) => xs.map((x) => x.textContent));
  assert.ok(specs.includes('subscriptions.*.email.isSubscribed'), specs.join(' | '));
  assert.equal(await page.textContent('#mode-badge'), 'read-only');
  assert.equal(await page.isHidden('#index-form'), true);
});

test('completion, Ctrl-Enter, and the rows of the table', async () => {
  await page.fill('#editor-input', '');
  await page.focus('#editor-input');
  await page.keyboard.type('SELECT email, profile.country FROM emailAccounts WHERE profile.coun');
  await page.keyboard.press('Control+Space');
  await page.waitForSelector('#completions:not([hidden]) li');
  const offered = await page.$$eval('#completions li span', (xs) => xs.map((x) => x.textContent));
  assert.ok(offered.includes('profile.country'), offered.join(' | '));
  await shot('console-completion');
  const k = offered.indexOf('profile.country');
  for (let i = 0; i < k; i++) await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  await page.keyboard.type(' = "DE"');
  assert.equal(
    await page.inputValue('#editor-input'),
    'SELECT email, profile.country FROM emailAccounts WHERE profile.country = "DE"',
  );
  const done = page.waitForResponse((r) => r.url().endsWith('/accounts.search'));
  await page.keyboard.press('Control+Enter');
  await done;
  await page.waitForSelector('#results table.grid tbody tr');
  // Nested values fold: profile is an object.
  const countries = await page.$$eval('#results table.grid > tbody > tr', (trs) => trs.map((tr) => tr.children[2].querySelector('details') !== null));
  assert.ok(countries.every(Boolean));
  const emails = await cellTexts('email');
  assert.ok(emails.length > 0 && emails.every((e) => e.includes('@')), emails.slice(0, 3).join(','));
  const status = await page.textContent('#status');
  const total = Number(/totalCount ([\d,]+)/.exec(status)[1].replace(/,/g, ''));
  assert.ok(total >= emails.length && total < DOCS, status);
  // The same rows as JSON.
  await page.click('#view-json');
  const json = JSON.parse(await page.textContent('#results pre.json'));
  assert.equal(json.length, emails.length);
  assert.ok(json.every((r) => r.profile.country === 'DE'));
  await page.click('#view-table');
  await page.click('#results table.grid > tbody > tr:first-child details summary');
  await shot('console-table');
});

test('paging through cursors', async () => {
  await runQuery('SELECT email FROM emailAccounts LIMIT 100');
  assert.match(await page.textContent('#page-info'), new RegExp(`^page 1 · 1–100 of ${DOCS.toLocaleString('en-US')}$`));
  const first = await cellTexts('email');
  assert.equal(first.length, 100);
  await page.click('#next-page');
  await page.waitForFunction(() => document.getElementById('page-info').textContent.startsWith('page 2'));
  assert.match(await page.textContent('#page-info'), /^page 2 · 101–200 of /);
  const second = await cellTexts('email');
  assert.equal(second.length, 100);
  assert.equal(new Set([...first, ...second]).size, 200, 'pages do not overlap');
  assert.equal(await page.textContent('#results table.grid > tbody > tr:first-child td.rownum'), '101');
  await page.click('#prev-page');
  await page.waitForFunction(() => document.getElementById('page-info').textContent.startsWith('page 1'));
  assert.deepEqual(await cellTexts('email'), first);
  assert.equal(await page.isDisabled('#prev-page'), true);
});

test('a bad query shows the caret under the offending token', async () => {
  const q = 'SELECT * FROM emailAccounts WHERE profile.age > ;';
  await runQuery(q);
  await page.waitForSelector('#error:not([hidden])');
  assert.match(await page.textContent('#error-message'), /line 1, column 49: expected a value/);
  const source = await page.textContent('#error-source');
  const [line, caret] = source.split('\n');
  assert.equal(line, `1 | ${q}`);
  assert.equal(caret.indexOf('^'), '1 | '.length + q.indexOf(';'));
  assert.equal(await page.textContent('#editor-highlight .t-error'), ';');
  await shot('console-error');
  // Typing clears the mark.
  await page.focus('#editor-input');
  await page.keyboard.press('Backspace');
  assert.equal(await page.$('#editor-highlight .t-error'), null);
});

test('a GROUP BY is drawn as a bar chart of its counts', async () => {
  await runQuery('SELECT profile.country, count(*) FROM emailAccounts GROUP BY profile.country');
  await page.waitForSelector('#results svg rect.bar');
  assert.equal(await page.getAttribute('#view-chart', 'class'), 'tab active');
  const bars = await page.$$eval('rect.bar', (rs) => rs.map((r) => [r.dataset.label, Number(r.dataset.value)]));
  const widths = await page.$$eval('rect.bar', (rs) => rs.map((r) => Number(r.getAttribute('width'))));
  assert.ok(widths.length > 1 && widths[0] >= widths[widths.length - 1], 'ordered by count, longest first');
  await page.click('#view-json');
  const rows = JSON.parse(await page.textContent('#results pre.json'));
  assert.equal(bars.length, Math.min(rows.length, 50));
  bars.forEach(([label, value], k) => {
    assert.equal(label, rows[k].profile.country);
    assert.equal(value, rows[k]['count(*)']);
  });
  assert.equal(rows.reduce((s, r) => s + r['count(*)'], 0) <= DOCS, true);
  await page.click('#view-chart');
  await shot('console-chart');
});

test('EXPLAIN is shown as the plan tree', async () => {
  await page.fill('#editor-input', 'SELECT email FROM emailAccounts WHERE profile.country = "DE" AND profile.age > 30');
  await page.click('#explain');
  await page.waitForSelector('#results ul.plan');
  const text = await page.textContent('#results ul.plan');
  assert.match(text, /emailAccounts/);
  assert.match(text, /sqlite:/);
  assert.ok(await page.$('#results ul.plan details ul li'), 'nested nodes');
  await shot('console-plan');
});

async function downloadText(buttonId) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click(buttonId)]);
  const file = await download.path();
  return { name: download.suggestedFilename(), text: fs.readFileSync(file, 'utf8') };
}

test('downloads stream the whole result as NDJSON and CSV', async () => {
  await page.fill('#editor-input', 'SELECT email, profile.country, profile.age FROM emailAccounts');
  const nd = await downloadText('#download-ndjson');
  assert.equal(nd.name, 'acql-results.ndjson');
  const lines = nd.text.trimEnd().split('\n');
  assert.equal(lines.length, DOCS, 'every record, not one page');
  assert.equal(new Set(lines.map((l) => JSON.parse(l).email)).size, DOCS);
  const csv = await downloadText('#download-csv');
  assert.equal(csv.name, 'acql-results.csv');
  const rows = csv.text.trimEnd().split('\r\n');
  assert.equal(rows[0], 'email,profile.country,profile.age');
  assert.equal(rows.length, DOCS + 1);
  // A bad query is reported in the page, not downloaded.
  await page.fill('#editor-input', 'SELECT * FROM nowhere');
  await page.click('#download-csv');
  await page.waitForSelector('#error:not([hidden])');
  assert.match(await page.textContent('#error-message'), /nowhere/);
});

test('history is kept in the browser', async () => {
  await page.reload();
  await page.waitForSelector('#app:not([hidden])');
  await page.click('#tab-history');
  const queries = await page.$$eval('#history li code', (xs) => xs.map((x) => x.textContent));
  assert.equal(queries[0], 'SELECT profile.country, count(*) FROM emailAccounts GROUP BY profile.country');
  assert.ok(queries.includes('SELECT email FROM emailAccounts LIMIT 100'));
  await page.click('#history li:nth-child(2)');
  assert.equal(await page.inputValue('#editor-input'), queries[1]);
  await page.click('#tab-catalog');
});

test('with credentials the console asks for a login and keeps no secret', async () => {
  const user = process.env.ACQL_USER_KEY;
  const secret = process.env.ACQL_SECRET;
  await page.goto(LOGIN);
  await page.waitForSelector('#login:not([hidden])');
  await shot('console-login');
  // Without a session the REST endpoint refuses a console call.
  const refused = await page.evaluate(async () => (await fetch('/accounts.search', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Acql-Csrf': 'guess' },
    body: 'query=SELECT%20*%20FROM%20emailAccounts',
  })).json());
  assert.equal(refused.errorCode, 403005);
  await page.fill('#login-user', user);
  await page.fill('#login-secret', 'd3Jvbmc=');
  await page.click('#login-submit');
  await page.waitForFunction(() => document.getElementById('login-error').textContent !== '');
  assert.match(await page.textContent('#login-error'), /wrong/);
  await page.fill('#login-user', user);
  await page.fill('#login-secret', secret);
  await page.click('#login-submit');
  await page.waitForSelector('#app:not([hidden])');
  assert.equal(await page.textContent('#user'), user);
  await runQuery('SELECT count(*) FROM emailAccounts');
  assert.match(await page.textContent('#status'), new RegExp(`^totalCount ${DOCS.toLocaleString('en-US')} · 1 records`));
  // The secret is nowhere in the page, and the session cookie is out of script's reach.
  assert.equal(await page.inputValue('#login-secret'), '');
  const html = await page.evaluate(() => document.documentElement.outerHTML);
  assert.ok(!html.includes(secret));
  assert.equal(await page.evaluate(() => document.cookie), '');
  const cookies = await context.cookies(LOGIN);
  assert.ok(cookies.some((c) => c.name.startsWith('acql_console_') && c.httpOnly && c.sameSite === 'Strict'));
  await page.click('#logout');
  await page.waitForSelector('#login:not([hidden])');
});

test('a non-loopback console without credentials refuses', async () => {
  await page.goto(PUBLIC);
  await page.waitForSelector('#refused:not([hidden])');
  assert.match(await page.textContent('#refused-message'), /no credentials are configured/);
  assert.equal(await page.isHidden('#app'), true);
  const reply = await page.evaluate(async () => (await fetch('/console/api/catalog')).json());
  assert.equal(reply.errorCode, 403007);
});

test('the page raised no script error', () => {
  assert.deepEqual(pageErrors, []);
});

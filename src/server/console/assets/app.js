// The console page: session and login, running queries, paging, views, explain,
// downloads, history and the index catalog.

import * as api from './api.js';
import { Editor, shapeOf } from './editor.js';
import { renderTable, renderJson, renderPlan, renderError } from './results.js';
import { chartable, renderChart } from './chart.js';

const $ = (id) => document.getElementById(id);
const HISTORY_KEY = 'acql.console.history';
const HISTORY_MAX = 100;

const state = {
  session: null,
  view: 'table',
  query: '',
  rows: [],
  plan: null,
  // Paging: pages[k] is the cursor id of page k (null: the first page, run from the query).
  pages: [],
  page: 0,
  pageSize: 0,
  next: null,
  total: 0,
  busy: false,
};

let editor;

function show(id, on) {
  $(id).hidden = !on;
}

// ---- session -------------------------------------------------------------------------

async function start() {
  editor = new Editor({
    root: $('editor'),
    input: $('editor-input'),
    highlight: $('editor-highlight'),
    list: $('completions'),
    onRun: () => run(),
  });
  wire();
  let session;
  try {
    session = await api.session();
  } catch (e) {
    refuse(e.message);
    return;
  }
  if (session.mode === 'refused') {
    refuse(session.message || session.errorDetails);
    return;
  }
  enter(session);
}

function refuse(message) {
  show('app', false);
  show('login', false);
  $('refused-message').textContent = message;
  show('refused', true);
}

function enter(session) {
  state.session = session;
  if (!session.loggedIn) {
    show('app', false);
    show('login', true);
    $('login-user').focus();
    return;
  }
  show('login', false);
  show('app', true);
  $('mode-badge').textContent = session.writes ? 'read-write' : 'read-only';
  $('mode-badge').className = `badge ${session.writes ? 'rw' : 'ro'}`;
  show('mode-badge', true);
  if (session.mode === 'login') {
    $('user').textContent = session.user;
    show('user', true);
    show('logout', true);
  }
  show('index-form', !!session.writes);
  loadCatalog();
  loadPaths();
  renderHistory();
  editor.input.focus();
}

async function login(event) {
  event.preventDefault();
  const user = $('login-user');
  const secret = $('login-secret');
  $('login-error').textContent = '';
  try {
    const session = await api.post('/console/api/login', { userKey: user.value, secret: secret.value });
    api.setCsrf(session.csrf);
    enter(session);
  } catch (e) {
    $('login-error').textContent = e.message;
  } finally {
    // The secret is not kept in the page.
    secret.value = '';
  }
}

async function logout() {
  try {
    await api.post('/console/api/logout', {});
  } catch (_) { /* the session may already be gone */ }
  api.setCsrf(null);
  location.reload();
}

/** A call failed because the session is gone: back to the login form. */
function sessionLost(e) {
  if (e instanceof api.ApiError && e.code === 403005 && state.session && state.session.mode === 'login') {
    state.session.loggedIn = false;
    enter(state.session);
    $('login-error').textContent = 'Your session ended: log in again.';
    return true;
  }
  return false;
}

// ---- queries -------------------------------------------------------------------------

function clearError() {
  show('error', false);
  editor.setMark(null);
}

function showError(query, e) {
  if (sessionLost(e)) return;
  const reply = e instanceof api.ApiError ? e.reply : { errorCode: 0, errorMessage: 'Error', errorDetails: String(e.message || e) };
  const span = renderError($('error'), query, reply);
  if (span && query === editor.value) editor.setMark({ start: span.start, end: span.end });
}

async function run() {
  const query = editor.value.trim();
  if (!query || state.busy) return;
  clearError();
  state.query = query;
  state.pages = [null];
  state.page = 0;
  const shape = shapeOf(query);
  await fetchPage({ query, openCursor: shape.cursorable ? 'true' : undefined }, shape);
}

async function fetchPage(params, shape = shapeOf(state.query)) {
  state.busy = true;
  $('run').disabled = true;
  const t0 = performance.now();
  try {
    const reply = await api.search(params);
    const ms = performance.now() - t0;
    state.rows = reply.results || [];
    state.total = reply.totalCount;
    state.next = reply.nextCursorId || null;
    if (state.page === 0) state.pageSize = state.rows.length;
    addHistory(state.query, reply.totalCount);
    $('status').textContent = `totalCount ${reply.totalCount.toLocaleString('en-US')} · ${reply.objectsCount.toLocaleString('en-US')} records · ${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
    const canChart = (shape.grouped || shape.aggregate) && chartable(state.rows);
    $('view-chart').disabled = !canChart;
    $('view-plan').disabled = true;
    state.plan = null;
    if (canChart && state.page === 0 && shape.grouped) state.view = 'chart';
    else if (state.view === 'chart' && !canChart) state.view = 'table';
    else if (state.view === 'plan') state.view = 'table';
    renderView();
  } catch (e) {
    // The old results belong to another query: do not leave them under the error.
    state.rows = [];
    state.next = null;
    state.total = 0;
    state.page = 0;
    state.pages = [];
    $('status').textContent = '';
    $('view-chart').disabled = true;
    if (state.view === 'chart' || state.view === 'plan') state.view = 'table';
    $('results').replaceChildren();
    showError(state.query, e);
  } finally {
    state.busy = false;
    $('run').disabled = false;
    updatePager();
  }
}

function updatePager() {
  const paged = state.pages.length > 0 && (state.next || state.page > 0);
  $('first-page').disabled = state.busy || state.page === 0;
  $('prev-page').disabled = state.busy || state.page === 0;
  $('next-page').disabled = state.busy || !state.next;
  if (paged) {
    const first = state.page * state.pageSize + 1;
    const last = first + state.rows.length - 1;
    $('page-info').textContent = `page ${state.page + 1} · ${first.toLocaleString('en-US')}–${last.toLocaleString('en-US')} of ${state.total.toLocaleString('en-US')}`;
  } else {
    $('page-info').textContent = '';
  }
}

async function nextPage() {
  if (!state.next) return;
  const id = state.next;
  state.page += 1;
  state.pages[state.page] = id;
  await fetchPage({ cursorId: id });
}

async function goToPage(k) {
  if (k <= 0) {
    state.page = 0;
    state.pages = [null];
    const shape = shapeOf(state.query);
    await fetchPage({ query: state.query, openCursor: shape.cursorable ? 'true' : undefined }, shape);
    return;
  }
  state.page = k;
  state.pages.length = k + 1;
  // A cursor id names one page; re-sending it returns that page again.
  await fetchPage({ cursorId: state.pages[k] });
}

// ---- views ---------------------------------------------------------------------------

function setView(view) {
  state.view = view;
  renderView();
}

function renderView() {
  for (const b of document.querySelectorAll('#views .tab')) b.classList.toggle('active', b.dataset.view === state.view);
  const target = $('results');
  if (state.view === 'json') renderJson(target, state.rows);
  else if (state.view === 'chart') renderChart(target, state.rows);
  else if (state.view === 'plan' && state.plan !== null) renderPlan(target, state.plan);
  else renderTable(target, state.rows, state.page * state.pageSize);
}

async function explain() {
  const query = editor.value.trim();
  if (!query) return;
  clearError();
  try {
    const reply = await api.post('/console/api/explain', { query });
    state.plan = reply.plan;
    $('view-plan').disabled = false;
    $('status').textContent = 'plan of the query in the editor (not run)';
    setView('plan');
  } catch (e) {
    showError(query, e);
  }
}

/**
 * Downloads stream straight from the server through a form post (the browser writes
 * them to disk as they arrive; nothing is held in the page). The query is checked
 * first, so a mistake shows in the page instead of as a downloaded error.
 */
async function download(format) {
  const query = editor.value.trim();
  if (!query) return;
  clearError();
  try {
    await api.post('/console/api/explain', { query });
  } catch (e) {
    showError(query, e);
    return;
  }
  const form = $('download-form');
  form.elements.query.value = query;
  form.elements.format.value = format;
  form.elements.csrf.value = api.csrfToken();
  form.submit();
}

// ---- history -------------------------------------------------------------------------

function history() {
  try {
    const h = JSON.parse(localStorage.getItem(HISTORY_KEY) || '[]');
    return Array.isArray(h) ? h : [];
  } catch (_) {
    return [];
  }
}

function addHistory(query, total) {
  const h = history().filter((e) => e.query !== query);
  h.unshift({ query, total, at: new Date().toISOString() });
  try {
    localStorage.setItem(HISTORY_KEY, JSON.stringify(h.slice(0, HISTORY_MAX)));
  } catch (_) { /* storage full or disabled: history is a convenience */ }
  renderHistory();
}

function renderHistory() {
  const list = $('history');
  list.replaceChildren();
  for (const e of history()) {
    const li = document.createElement('li');
    const q = document.createElement('code');
    q.textContent = e.query;
    const meta = document.createElement('small');
    meta.textContent = `${new Date(e.at).toLocaleString()} · ${e.total ?? '?'} matches`;
    li.append(q, meta);
    li.title = 'Load into the editor';
    li.addEventListener('click', () => {
      editor.value = e.query;
      editor.input.focus();
    });
    list.appendChild(li);
  }
  if (!list.children.length) {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = 'Queries you run are kept here, in this browser.';
    list.appendChild(li);
  }
}

// ---- catalog and completion ----------------------------------------------------------

async function loadCatalog() {
  const list = $('catalog');
  try {
    const reply = await api.get('/console/api/catalog');
    list.replaceChildren();
    for (const ix of reply.indexes) {
      const li = document.createElement('li');
      const spec = document.createElement('code');
      spec.textContent = ix.spec;
      const meta = document.createElement('small');
      meta.textContent = `${ix.collection} · ${ix.kind}`;
      li.append(spec, meta);
      li.title = 'Insert the path at the caret';
      li.addEventListener('click', () => insertPath(ix.spec.split(',')[0].split('.*')[0]));
      if (reply.writes) {
        const drop = document.createElement('button');
        drop.type = 'button';
        drop.className = 'link drop';
        drop.textContent = 'drop';
        drop.addEventListener('click', (ev) => {
          ev.stopPropagation();
          changeIndex({ action: 'drop', collection: ix.collection, spec: ix.spec, kind: ix.kind });
        });
        li.appendChild(drop);
      }
      list.appendChild(li);
    }
    if (!reply.indexes.length) list.innerHTML = '<li class="muted">No indexes.</li>';
  } catch (e) {
    if (!sessionLost(e)) list.textContent = e.message;
  }
}

async function changeIndex(body) {
  try {
    await api.post('/console/api/index', body);
    await loadCatalog();
    loadPaths();
  } catch (e) {
    showError('', e);
  }
}

function insertPath(path) {
  const input = editor.input;
  const at = input.selectionStart;
  editor.value = input.value.slice(0, at) + path + input.value.slice(input.selectionEnd);
  input.focus();
  input.setSelectionRange(at + path.length, at + path.length);
}

async function loadPaths() {
  try {
    const reply = await api.get('/console/api/paths');
    editor.paths = reply.paths;
    editor.collections = reply.collections;
    editor.render();
  } catch (_) { /* completion then offers keywords only */ }
}

// ---- wiring --------------------------------------------------------------------------

function wire() {
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('run').addEventListener('click', () => run());
  $('explain').addEventListener('click', () => explain());
  $('download-ndjson').addEventListener('click', () => download('ndjson'));
  $('download-csv').addEventListener('click', () => download('csv'));
  $('next-page').addEventListener('click', () => nextPage());
  $('prev-page').addEventListener('click', () => goToPage(state.page - 1));
  $('first-page').addEventListener('click', () => goToPage(0));
  for (const b of document.querySelectorAll('#views .tab')) b.addEventListener('click', () => setView(b.dataset.view));
  for (const b of document.querySelectorAll('.side .tab')) {
    b.addEventListener('click', () => {
      for (const o of document.querySelectorAll('.side .tab')) o.classList.toggle('active', o === b);
      show('side-catalog', b.dataset.side === 'catalog');
      show('side-history', b.dataset.side === 'history');
    });
  }
  $('history-clear').addEventListener('click', () => {
    localStorage.removeItem(HISTORY_KEY);
    renderHistory();
  });
  $('index-form').addEventListener('submit', (e) => {
    e.preventDefault();
    changeIndex({ action: 'add', spec: $('index-spec').value, kind: $('index-kind').value, collection: $('index-collection').value });
  });
}

start();

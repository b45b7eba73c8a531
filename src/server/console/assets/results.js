// Result views: a table whose nested values fold, pretty JSON, the plan tree, and the
// error with a caret under the query text.

import { escapeHtml } from './editor.js';

const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

/** A scalar's cell, or a folded view of an object or array. */
function valueNode(v) {
  if (v === null) return el('span', 'v-null', 'null');
  if (Array.isArray(v)) {
    if (v.length === 0) return el('span', 'v-empty', '[]');
    if (v.every((x) => x === null || typeof x !== 'object')) {
      return el('span', 'v-array', JSON.stringify(v));
    }
    return folded(`[${v.length}]`, v.map((x, k) => [String(k), x]));
  }
  if (typeof v === 'object') {
    const keys = Object.keys(v);
    if (keys.length === 0) return el('span', 'v-empty', '{}');
    return folded(`{${keys.length}} ${keys.slice(0, 3).join(', ')}${keys.length > 3 ? ', …' : ''}`, keys.map((k) => [k, v[k]]));
  }
  if (typeof v === 'number') return el('span', 'v-number', String(v));
  if (typeof v === 'boolean') return el('span', 'v-bool', String(v));
  return el('span', 'v-string', String(v));
}

function folded(summary, entries) {
  const d = el('details', 'fold');
  d.appendChild(el('summary', null, summary));
  const t = el('table', 'kv');
  for (const [k, x] of entries) {
    const tr = el('tr');
    tr.appendChild(el('th', null, k));
    const td = el('td');
    td.appendChild(valueNode(x));
    tr.appendChild(td);
    t.appendChild(tr);
  }
  d.appendChild(t);
  return d;
}

/** The records as a table: one column per top-level key, in order of appearance. */
export function renderTable(target, rows, firstIndex = 0) {
  target.replaceChildren();
  if (rows.length === 0) {
    target.appendChild(el('p', 'empty', 'No records.'));
    return;
  }
  const cols = [];
  const seen = new Set();
  for (const r of rows) {
    const keys = r !== null && typeof r === 'object' && !Array.isArray(r) ? Object.keys(r) : ['value'];
    for (const k of keys) if (!seen.has(k)) { seen.add(k); cols.push(k); }
  }
  const table = el('table', 'grid');
  const head = el('tr');
  head.appendChild(el('th', 'rownum', '#'));
  for (const c of cols) head.appendChild(el('th', null, c));
  table.appendChild(el('thead')).appendChild(head);
  const body = el('tbody');
  rows.forEach((r, k) => {
    const tr = el('tr');
    tr.appendChild(el('td', 'rownum', String(firstIndex + k + 1)));
    for (const c of cols) {
      const td = el('td');
      const obj = r !== null && typeof r === 'object' && !Array.isArray(r);
      if (obj ? c in r : c === 'value') td.appendChild(valueNode(obj ? r[c] : r));
      else td.className = 'missing';
      tr.appendChild(td);
    }
    body.appendChild(tr);
  });
  table.appendChild(body);
  target.appendChild(table);
}

/** Pretty JSON with coloured tokens. */
export function renderJson(target, value) {
  const pre = el('pre', 'json');
  const text = JSON.stringify(value, null, 2);
  pre.innerHTML = escapeHtml(text).replace(
    /(&quot;(?:[^&\\]|\\.|&(?!quot;))*&quot;)(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g,
    (m, str, colon, lit, num) => {
      if (str) return colon ? `<span class="j-key">${str}</span>${colon}` : `<span class="j-str">${str}</span>`;
      if (lit) return `<span class="j-lit">${lit}</span>`;
      return `<span class="j-num">${num}</span>`;
    },
  );
  target.replaceChildren(pre);
}

/**
 * The plan text of `acql explain` as a tree: each line is a node, deeper-indented lines
 * below it are its children (folded open).
 */
export function renderPlan(target, text) {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const root = { children: [], depth: -1 };
  const stack = [root];
  for (const line of lines) {
    const depth = line.length - line.trimStart().length;
    const node = { text: line.trim(), depth, children: [] };
    while (stack.length > 1 && stack[stack.length - 1].depth >= depth) stack.pop();
    stack[stack.length - 1].children.push(node);
    stack.push(node);
  }
  const build = (node) => {
    const li = el('li');
    const kind = /^sql\b/.test(node.text) ? 'plan-sql' : /^sqlite:/.test(node.text) ? 'plan-sqlite' : 'plan-node';
    if (node.children.length) {
      const d = el('details');
      d.open = true;
      d.appendChild(el('summary', kind, node.text));
      const ul = el('ul');
      node.children.forEach((c) => ul.appendChild(build(c)));
      d.appendChild(ul);
      li.appendChild(d);
    } else {
      li.appendChild(el('span', kind, node.text));
    }
    return li;
  };
  const ul = el('ul', 'plan');
  root.children.forEach((c) => ul.appendChild(build(c)));
  target.replaceChildren(ul);
}

/**
 * Where an error points: "line L, column C" in errorDetails (columns count characters).
 * Returns {line, column, start, end} with [start, end) the offending token's offsets in
 * `query`, or null.
 */
export function errorSpan(query, details) {
  const m = /line (\d+), column (\d+)/.exec(details || '');
  if (!m) return null;
  const line = Number(m[1]);
  const column = Number(m[2]);
  const lines = query.split('\n');
  if (line < 1 || line > lines.length) return null;
  const chars = Array.from(lines[line - 1]);
  let offset = 0;
  for (let k = 0; k < line - 1; k++) offset += lines[k].length + 1;
  const col = Math.min(column - 1, chars.length);
  const startInLine = chars.slice(0, col).join('').length;
  // The token at the column: a word, a quoted string, or one character.
  const rest = chars.slice(col).join('');
  let len = 1;
  const word = /^[\p{L}\p{N}_\-@$.`]+|^"(?:[^"\\]|\\.)*"?|^'(?:[^'\\]|\\.)*'?/u.exec(rest);
  if (word) len = word[0].length;
  const start = offset + startInLine;
  return { line, column, start, end: start + Math.max(1, Math.min(len, rest.length || 1)), width: Array.from(rest.slice(0, len)).length || 1 };
}

/** The error box: message, then the query line with a caret run under the token. */
export function renderError(box, query, reply) {
  const msg = box.querySelector('#error-message');
  const src = box.querySelector('#error-source');
  const details = reply.errorDetails || '';
  msg.textContent = `${reply.errorMessage || 'Error'} (${reply.errorCode}): ${details}`;
  const span = errorSpan(query, details);
  if (span) {
    const text = query.split('\n')[span.line - 1];
    const gutter = `${span.line} | `;
    src.innerHTML = `${escapeHtml(gutter + text)}\n<span id="error-caret" class="caret">${' '.repeat(gutter.length + span.column - 1)}${'^'.repeat(span.width)}</span>`;
    src.hidden = false;
  } else {
    src.textContent = '';
    src.hidden = true;
  }
  box.hidden = false;
  return span;
}

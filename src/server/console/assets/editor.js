// The query editor: a textarea over a highlighted copy of its text (the textarea's own
// glyphs are transparent, its caret and selection stay native), plus keyword and
// field-path completion.

export const KEYWORDS = [
  'SELECT', 'FROM', 'WHERE', 'AND', 'OR', 'NOT', 'IN', 'IS', 'NULL', 'CONTAINS', 'GROUP',
  'BY', 'ORDER', 'ASC', 'DESC', 'START', 'LIMIT', 'AS', 'TRUE', 'FALSE', 'REGEX',
];
export const FUNCTIONS = ['count', 'sum', 'min', 'max', 'avg', 'sum_of_squares', 'variance', 'std'];
const KEYWORD_SET = new Set(KEYWORDS);
const FUNCTION_SET = new Set(FUNCTIONS);

const SEGMENT = /[\p{L}\p{N}_\-@$]/u;

/**
 * Splits query text into tokens {type, text, start}: keyword, function, collection,
 * path, string, number, op, punct, space, other. Unclosed strings run to the end.
 */
export function tokenize(text, collections = []) {
  const colls = new Set(collections.map((c) => c.toLowerCase()));
  const out = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    const start = i;
    if (/\s/.test(c)) {
      while (i < text.length && /\s/.test(text[i])) i++;
      out.push({ type: 'space', text: text.slice(start, i), start });
    } else if (c === '"' || c === "'") {
      i++;
      while (i < text.length && text[i] !== c) i += text[i] === '\\' ? 2 : 1;
      i = Math.min(i + 1, text.length);
      out.push({ type: 'string', text: text.slice(start, i), start });
    } else if (/[0-9]/.test(c) || (c === '-' && /[0-9]/.test(text[i + 1] || '') && !/[\w)]/.test(prevSignificant(out)))) {
      i++;
      while (i < text.length && /[0-9.eE+\-]/.test(text[i])) {
        if ((text[i] === '+' || text[i] === '-') && !/[eE]/.test(text[i - 1])) break;
        i++;
      }
      out.push({ type: 'number', text: text.slice(start, i), start });
    } else if (c === '`' || SEGMENT.test(c)) {
      // A path: segments joined by dots, a segment in backticks may hold anything.
      while (i < text.length) {
        if (text[i] === '`') {
          i++;
          while (i < text.length && text[i] !== '`') i++;
          i = Math.min(i + 1, text.length);
        } else if (SEGMENT.test(text[i]) || text[i] === '.') {
          i++;
        } else break;
      }
      const word = text.slice(start, i);
      let type = 'path';
      if (KEYWORD_SET.has(word.toUpperCase())) type = 'keyword';
      else if (FUNCTION_SET.has(word.toLowerCase()) && /^\s*\(/.test(text.slice(i))) type = 'function';
      else if (colls.has(word.toLowerCase())) type = 'collection';
      out.push({ type, text: word, start });
    } else if (/[<>!=]/.test(c)) {
      i++;
      if (i < text.length && /[=>]/.test(text[i])) i++;
      out.push({ type: 'op', text: text.slice(start, i), start });
    } else if (/[(),;*]/.test(c)) {
      i++;
      out.push({ type: 'punct', text: c, start });
    } else {
      i++;
      out.push({ type: 'other', text: c, start });
    }
  }
  return out;
}

function prevSignificant(tokens) {
  for (let k = tokens.length - 1; k >= 0; k--) {
    if (tokens[k].type !== 'space') return tokens[k].text.slice(-1);
  }
  return '';
}

/** What a query's tokens say about paging: GROUP BY, START or an aggregate forbid cursors. */
export function shapeOf(text) {
  const toks = tokenize(text).filter((t) => t.type !== 'space');
  const kw = (t, w) => t && t.type === 'keyword' && t.text.toUpperCase() === w;
  let grouped = false;
  let aggregate = false;
  let start = false;
  toks.forEach((t, k) => {
    if (kw(t, 'GROUP') && kw(toks[k + 1], 'BY')) grouped = true;
    if (kw(t, 'START')) start = true;
    if (t.type === 'function') aggregate = true;
  });
  return { grouped, aggregate, start, cursorable: !grouped && !aggregate && !start };
}

export function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

/** The editor widget over the elements of index.html. */
export class Editor {
  constructor({ root, input, highlight, list, onRun }) {
    this.root = root;
    this.input = input;
    this.highlight = highlight;
    this.list = list;
    this.onRun = onRun;
    this.paths = [];
    this.collections = ['emailAccounts', 'accounts'];
    this.mark = null; // {start, end}: the span an error points at
    this.items = [];
    this.active = 0;
    input.addEventListener('input', () => {
      this.mark = null;
      this.render();
      this.complete(false);
    });
    input.addEventListener('scroll', () => this.syncScroll());
    input.addEventListener('keydown', (e) => this.keydown(e));
    input.addEventListener('blur', () => setTimeout(() => this.close(), 150));
    list.addEventListener('mousedown', (e) => {
      const li = e.target.closest('li');
      if (!li) return;
      e.preventDefault();
      this.accept(Number(li.dataset.index));
    });
    this.render();
  }

  get value() {
    return this.input.value;
  }

  set value(text) {
    this.input.value = text;
    this.mark = null;
    this.render();
  }

  /** Underlines the characters [start, end) (an error's span). */
  setMark(mark) {
    this.mark = mark;
    this.render();
  }

  render() {
    const text = this.input.value;
    let html = '';
    for (const t of tokenize(text, this.collections)) {
      html += this.wrap(t.type, t.text, t.start);
    }
    // A trailing newline needs a character after it to take up its line.
    this.highlight.innerHTML = html + '\n';
    this.syncScroll();
  }

  wrap(type, text, start) {
    const m = this.mark;
    const cls = `t-${type}`;
    if (!m || start + text.length <= m.start || start >= m.end) {
      return `<span class="${cls}">${escapeHtml(text)}</span>`;
    }
    const a = Math.max(0, m.start - start);
    const b = Math.min(text.length, m.end - start);
    return `<span class="${cls}">${escapeHtml(text.slice(0, a))}<span class="t-error">${escapeHtml(text.slice(a, b) || ' ')}</span>${escapeHtml(text.slice(b))}</span>`;
  }

  syncScroll() {
    this.highlight.scrollTop = this.input.scrollTop;
    this.highlight.scrollLeft = this.input.scrollLeft;
  }

  keydown(e) {
    if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') {
      e.preventDefault();
      this.close();
      this.onRun();
      return;
    }
    if (e.ctrlKey && (e.key === ' ' || e.code === 'Space')) {
      e.preventDefault();
      this.complete(true);
      return;
    }
    if (this.list.hidden) return;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const n = this.items.length;
      this.active = (this.active + (e.key === 'ArrowDown' ? 1 : n - 1)) % n;
      this.showList();
    } else if (e.key === 'Tab' || e.key === 'Enter') {
      e.preventDefault();
      this.accept(this.active);
    } else if (e.key === 'Escape') {
      e.preventDefault();
      this.close();
    }
  }

  /** The word before the caret: path characters, dots and backticks. */
  wordBefore() {
    const text = this.input.value;
    const end = this.input.selectionStart;
    let start = end;
    while (start > 0 && (SEGMENT.test(text[start - 1]) || text[start - 1] === '.' || text[start - 1] === '`')) start--;
    return { start, end, word: text.slice(start, end) };
  }

  /** Candidates for `word`: keywords in the case typed, collections, then paths one segment at a time. */
  candidates(word) {
    if (!word) return [];
    const lower = /^[a-z]/.test(word);
    const out = [];
    const seen = new Set();
    const add = (text, kind) => {
      if (text !== word && !seen.has(text)) {
        seen.add(text);
        out.push({ text, kind });
      }
    };
    if (!word.includes('.')) {
      for (const k of KEYWORDS) {
        if (k.startsWith(word.toUpperCase())) add(lower ? k.toLowerCase() : k, 'keyword');
      }
      for (const f of FUNCTIONS) if (f.startsWith(word.toLowerCase())) add(`${f}(`, 'function');
      for (const c of this.collections) if (c.toLowerCase().startsWith(word.toLowerCase())) add(c, 'collection');
    }
    for (const p of this.paths) {
      if (!p.startsWith(word)) continue;
      const rest = p.slice(word.length);
      const dot = rest.indexOf('.', 1);
      add(dot < 0 ? p : p.slice(0, word.length + dot), 'path');
    }
    return out.slice(0, 50);
  }

  complete(forced) {
    const { word } = this.wordBefore();
    if (!forced && word.length < 1) {
      this.close();
      return;
    }
    this.items = this.candidates(word);
    this.active = 0;
    if (this.items.length === 0) {
      this.close();
      return;
    }
    this.showList();
  }

  showList() {
    this.list.innerHTML = this.items
      .map((it, k) => `<li role="option" data-index="${k}" class="${k === this.active ? 'active' : ''}"><span class="t-${it.kind}">${escapeHtml(it.text)}</span><small>${it.kind}</small></li>`)
      .join('');
    const pos = this.caretPosition();
    this.list.style.left = `${pos.left}px`;
    this.list.style.top = `${pos.top}px`;
    this.list.hidden = false;
    const active = this.list.children[this.active];
    if (active) active.scrollIntoView({ block: 'nearest' });
  }

  close() {
    this.list.hidden = true;
    this.items = [];
  }

  accept(k) {
    const item = this.items[k];
    if (!item) return;
    const { start, end } = this.wordBefore();
    const text = this.input.value;
    this.input.value = text.slice(0, start) + item.text + text.slice(end);
    const caret = start + item.text.length;
    this.input.setSelectionRange(caret, caret);
    this.close();
    this.render();
    this.input.focus();
  }

  /** Where the caret is, in pixels inside the editor box (monospace text). */
  caretPosition() {
    const style = getComputedStyle(this.input);
    const before = this.input.value.slice(0, this.input.selectionStart);
    const lines = before.split('\n');
    const col = lines[lines.length - 1].length;
    const probe = document.createElement('span');
    probe.textContent = 'M'.repeat(20);
    probe.style.font = style.font;
    probe.style.visibility = 'hidden';
    probe.style.position = 'absolute';
    document.body.appendChild(probe);
    const charWidth = probe.getBoundingClientRect().width / 20;
    probe.remove();
    const lineHeight = parseFloat(style.lineHeight) || 20;
    return {
      left: parseFloat(style.paddingLeft) + col * charWidth - this.input.scrollLeft,
      top: parseFloat(style.paddingTop) + lines.length * lineHeight - this.input.scrollTop + 2,
    };
  }
}

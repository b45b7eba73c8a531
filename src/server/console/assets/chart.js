// A horizontal bar chart (SVG) of GROUP BY / aggregate rows: one bar per group, its
// length the chosen aggregate (count(*) when present).

const SVG = 'http://www.w3.org/2000/svg';
/** Bars drawn at most; the rest are counted in a note. */
export const MAX_BARS = 50;

const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Aggregate columns: top-level keys written like a function call, numeric in some row. */
export function measures(rows) {
  const out = [];
  for (const r of rows) {
    if (!isPlainObject(r)) return [];
    for (const [k, v] of Object.entries(r)) {
      if (/^\w+\(.*\)$/.test(k) && typeof v === 'number' && !out.includes(k)) out.push(k);
    }
  }
  return out;
}

/** The group label of a row: its non-aggregate leaves, dotted, joined by " · ". */
export function label(row, skip) {
  const parts = [];
  const walk = (v, prefix) => {
    if (isPlainObject(v)) {
      for (const [k, x] of Object.entries(v)) {
        if (!prefix && skip.includes(k)) continue;
        walk(x, prefix ? `${prefix}.${k}` : k);
      }
    } else {
      parts.push(typeof v === 'string' ? v : JSON.stringify(v));
    }
  };
  walk(row, '');
  return parts.join(' · ') || '(all)';
}

/** Whether the rows can be charted. */
export function chartable(rows) {
  return rows.length > 0 && measures(rows).length > 0;
}

function node(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Draws the chart of `rows` into `target`, with a measure picker when there are several. */
export function renderChart(target, rows, measure) {
  const all = measures(rows);
  const m = all.includes(measure) ? measure : (all.includes('count(*)') ? 'count(*)' : all[0]);
  target.replaceChildren();
  const wrap = document.createElement('div');
  wrap.className = 'chart';
  if (all.length > 1) {
    const pick = document.createElement('select');
    pick.id = 'chart-measure';
    for (const a of all) {
      const o = document.createElement('option');
      o.textContent = a;
      o.selected = a === m;
      pick.appendChild(o);
    }
    pick.addEventListener('change', () => renderChart(target, rows, pick.value));
    wrap.appendChild(pick);
  }
  const shown = rows.slice(0, MAX_BARS);
  const labels = shown.map((r) => label(r, all));
  const values = shown.map((r) => (typeof r[m] === 'number' ? r[m] : 0));
  const max = Math.max(...values.map(Math.abs), 1);
  const labelWidth = Math.min(260, Math.max(60, ...labels.map((l) => l.length * 7.2 + 12)));
  const barArea = 560;
  const rowH = 24;
  const width = labelWidth + barArea + 90;
  const height = shown.length * rowH + 30;
  const svg = node('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': `bar chart of ${m}` });
  svg.appendChild(node('text', { x: labelWidth, y: 14, class: 'chart-title' }, m));
  shown.forEach((r, k) => {
    const y = 22 + k * rowH;
    const w = Math.max(1, (Math.abs(values[k]) / max) * barArea);
    const text = labels[k].length > 36 ? `${labels[k].slice(0, 35)}…` : labels[k];
    svg.appendChild(node('text', { x: labelWidth - 8, y: y + 15, class: 'chart-label', 'text-anchor': 'end' }, text));
    const bar = node('rect', { x: labelWidth, y: y + 3, width: w, height: rowH - 7, rx: 3, class: 'bar', 'data-label': labels[k], 'data-value': values[k] });
    bar.appendChild(node('title', {}, `${labels[k]}: ${values[k]}`));
    svg.appendChild(bar);
    svg.appendChild(node('text', { x: labelWidth + w + 6, y: y + 15, class: 'chart-value' }, values[k].toLocaleString('en-US')));
  });
  wrap.appendChild(svg);
  if (rows.length > shown.length) {
    const note = document.createElement('p');
    note.className = 'muted';
    note.textContent = `The first ${shown.length} of ${rows.length} groups on this page.`;
    wrap.appendChild(note);
  }
  target.appendChild(wrap);
}

// Small DOM helpers. Text always goes in as text (textContent), never as
// HTML, so nothing an event carries can run in the page.

// h builds an element: h('a', {href: '/ui/', class: 'x', onclick: f}, 'text', child).
export function h(tag, attrs, ...children) {
  const el = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// clear empties an element and fills it with children.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

// clock formats a time as HH:MM:SS.mmm, local.
export function clock(ts) {
  const d = new Date(ts);
  if (isNaN(d)) return '';
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

// when formats a time as a short local date and time.
export function when(ts) {
  const d = new Date(ts);
  if (isNaN(d) || d.getFullYear() < 1971) return '—';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(ts)}`;
}

// ms formats a duration in milliseconds.
export function ms(v) {
  if (v === undefined || v === null) return '—';
  if (v === 0) return '0 ms';
  if (v < 1) return `${(v * 1000).toFixed(0)} µs`;
  if (v < 1000) return `${v.toFixed(v < 10 ? 1 : 0)} ms`;
  return `${(v / 1000).toFixed(v < 10000 ? 2 : 1)} s`;
}

// dur turns a herald duration ("1.5s", "120ms", or nanoseconds) into ms.
export function durMs(d) {
  if (typeof d === 'number') return d / 1e6;
  if (typeof d !== 'string' || !d) return null;
  let total = 0;
  const re = /([0-9.]+)(ns|us|µs|ms|s|m|h)/g;
  let m, any = false;
  while ((m = re.exec(d))) {
    any = true;
    const n = parseFloat(m[1]);
    total += n * {ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1e3, m: 6e4, h: 3.6e6}[m[2]];
  }
  return any ? total : null;
}

export function num(n) {
  return n === undefined || n === null ? '—' : Number(n).toLocaleString('en-US');
}

// short cuts an id to its last 8 characters for display.
export const short = (id) => (id && id.length > 12 ? '…' + id.slice(-8) : id || '');

export const eventHref = (id) => '/ui/events/' + encodeURIComponent(id);
export const corrHref = (id) => '/ui/correlations/' + encodeURIComponent(id);

// jsonView renders a value as indented, coloured JSON. mark(path) may
// return a badge to put after a field (path is a list of keys).
export function jsonView(value, mark) {
  const pre = h('pre', {class: 'json'});
  const walk = (v, indent, path) => {
    const ind = '  '.repeat(indent);
    if (v === null) return pre.append(h('span', {class: 'j-null'}, 'null'));
    if (Array.isArray(v)) {
      if (!v.length) return pre.append('[]');
      pre.append('[\n');
      v.forEach((x, i) => {
        pre.append(ind + '  ');
        walk(x, indent + 1, path.concat(i));
        pre.append(i < v.length - 1 ? ',\n' : '\n');
      });
      return pre.append(ind + ']');
    }
    if (typeof v === 'object') {
      const keys = Object.keys(v);
      if (!keys.length) return pre.append('{}');
      pre.append('{\n');
      keys.forEach((k, i) => {
        pre.append(ind + '  ', h('span', {class: 'j-key'}, JSON.stringify(k)), ': ');
        walk(v[k], indent + 1, path.concat(k));
        const badge = mark && mark(path.concat(k));
        if (badge) pre.append(' ', badge);
        pre.append(i < keys.length - 1 ? ',\n' : '\n');
      });
      return pre.append(ind + '}');
    }
    const cls = typeof v === 'string' ? 'j-str' : typeof v === 'number' ? 'j-num' : 'j-bool';
    pre.append(h('span', {class: cls}, JSON.stringify(v)));
  };
  walk(value, 0, []);
  return pre;
}

// armedUntil keeps, by key, until when a confirm button stays armed, so
// that a button drawn again (a table refreshed every few seconds) keeps
// the click that armed it.
const armedUntil = new Map();

// confirmButton is a button that asks for a second click (within 4 s)
// before acting. Buttons drawn again for the same thing share key.
export function confirmButton(label, cls, action, id, key) {
  let localUntil = 0, timer;
  const until = () => key ? (armedUntil.get(key) || 0) : localUntil;
  const arm = (t) => {
    localUntil = t;
    if (key) { if (t) armedUntil.set(key, t); else armedUntil.delete(key); }
  };
  const show = () => {
    const on = until() > Date.now();
    b.textContent = on ? 'Confirm ' + label.toLowerCase() : label;
    b.classList.toggle('armed', on);
    clearTimeout(timer);
    if (on) timer = setTimeout(show, until() - Date.now());
  };
  const b = h('button', {class: cls, type: 'button', id, onclick: async () => {
    if (until() <= Date.now()) {
      arm(Date.now() + 4000);
      show();
      return;
    }
    arm(0);
    b.disabled = true;
    try { await action(); } finally { b.disabled = false; show(); }
  }}, label);
  show();
  return b;
}

// notice shows a message at the top of the page for a few seconds.
export function notice(text, kind = 'ok') {
  let box = document.getElementById('notice');
  if (!box) {
    box = h('div', {id: 'notice', role: 'status'});
    document.body.append(box);
  }
  const n = h('div', {class: 'notice ' + kind}, text);
  box.append(n);
  setTimeout(() => n.remove(), kind === 'error' ? 8000 : 4000);
}

// The live events page: the newest events first, streamed over SSE.
// The list is virtual: it keeps the newest CAP events in memory and draws
// only the rows in view, from a small pool of row elements, at most once
// per animation frame. Each draw costs the same at 20 or 2,000 events a
// second, and memory stays bounded.
import {api, ApiError} from './api.js';
import {h, fill, clock, short, eventHref, corrHref, num} from './dom.js';

export const title = 'Live events';

const CAP = 500; // events kept in the list
const BACKLOG = 100; // events shown from before the page opened
const FILTERS = [
  ['name', 'Name pattern', 'recording.>'],
  ['subject', 'Subject', 'recording/42'],
  ['correlation_id', 'Correlation id', ''],
  ['source_plugin', 'Source', 'recorder'],
];

export default async function live(main) {
  const q = new URLSearchParams(location.search);
  const inputs = {};
  const form = h('form', {class: 'filters', id: 'filters', onsubmit: (e) => { e.preventDefault(); apply(); }},
    FILTERS.map(([k, label, ph]) => h('label', {}, label,
      inputs[k] = h('input', {name: k, id: 'f-' + k, value: q.get(k) || '', placeholder: ph, autocomplete: 'off', spellcheck: 'false'}))),
    h('button', {type: 'submit', id: 'apply'}, 'Filter'),
    h('button', {type: 'button', class: 'secondary', onclick: () => { for (const i of Object.values(inputs)) i.value = ''; apply(); }}, 'Clear'));
  const pauseBtn = h('button', {type: 'button', id: 'pause', class: 'secondary', onclick: () => setPaused(!paused)}, 'Pause');
  const status = h('span', {class: 'status', id: 'live-status'}, 'connecting…');
  const counter = h('span', {class: 'muted', id: 'live-count'});
  const win = h('div', {class: 'window'});
  const spacer = h('div', {class: 'spacer'}, win);
  const list = h('div', {class: 'events', id: 'events', role: 'list', onscroll: () => schedule()}, spacer);
  const err = h('p', {class: 'error', id: 'live-error', hidden: true});
  fill(main,
    h('div', {class: 'page-head'}, h('h1', {}, 'Live events'), h('div', {class: 'tools'}, status, counter, pauseBtn)),
    form, err,
    h('div', {class: 'events-head'}, h('span', {}, 'time'), h('span', {}, 'name'), h('span', {}, 'subject'),
      h('span', {}, 'source'), h('span', {}, 'correlation'), h('span', {class: 'num'}, 'position')),
    list);

  let es = null, queue = [], items = [], scheduled = false, paused = false, seen = 0, missed = 0, gen = 0, firstShown = false;

  function setPaused(p) {
    paused = p;
    pauseBtn.textContent = p ? 'Resume' : 'Pause';
    pauseBtn.classList.toggle('armed', p);
    status.textContent = p ? 'paused' : (es && es.readyState === 1 ? 'live' : 'connecting…');
    status.className = 'status ' + (p ? 'paused' : 'live');
    if (!p) schedule();
  }

  function schedule() {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(flush);
  }

  // Rows are clones of one template, reused as the list scrolls.
  const ROW = 28; // px, as .ev's height in style.css
  const tpl = h('div', {class: 'ev', role: 'listitem'}, h('span', {class: 't'}), h('a', {class: 'n'}), h('span', {class: 's'}),
    h('span', {class: 'src'}), h('a', {class: 'c'}), h('span', {class: 'num'}));
  function show(r, item) {
    if (!item.e) {
      try { item.e = JSON.parse(item.raw); } catch { item.e = {name: '(unreadable)', id: ''}; }
      item.raw = null;
    }
    const e = item.e;
    if (r.dataset.position === String(e.position)) return;
    const [t, n, s, src, c, pos] = r.children;
    r.dataset.position = e.position;
    r.dataset.name = e.name;
    t.textContent = clock(e.timestamp);
    n.textContent = e.name;
    n.href = eventHref(e.id);
    s.textContent = e.subject || '';
    src.textContent = e.source_plugin || '';
    c.textContent = e.correlation_id ? short(e.correlation_id) : '';
    c.href = e.correlation_id ? corrHref(e.correlation_id) : '';
    c.title = e.correlation_id || '';
    pos.textContent = e.position;
  }

  // flush takes the queued events into the list (newest first, the list
  // capped) and draws the rows in view.
  function flush() {
    scheduled = false;
    list.dataset.received = seen;
    if (paused) {
      status.textContent = `paused · ${num(Math.min(queue.length, CAP))} new`;
    } else if (queue.length) {
      const batch = queue.length > CAP ? queue.slice(-CAP) : queue;
      missed += queue.length - batch.length;
      queue = [];
      const added = batch.map((raw) => ({raw})).reverse();
      const dropped = Math.max(0, items.length + added.length - CAP);
      items = added.concat(dropped ? items.slice(0, items.length - dropped) : items);
      // A reader scrolled down keeps the rows under their eyes.
      if (list.scrollTop > 0) list.scrollTop += added.length * ROW;
      counter.textContent = `${num(seen)} received` + (missed ? `, ${num(missed)} skipped while paused or busy` : '');
    }
    draw();
  }

  function draw() {
    spacer.style.height = items.length * ROW + 'px';
    list.dataset.rows = items.length;
    const first = Math.min(Math.floor(list.scrollTop / ROW), Math.max(0, items.length - 1));
    const n = Math.min(items.length - first, Math.ceil(list.clientHeight / ROW) + 2);
    while (win.childElementCount < n) win.append(tpl.cloneNode(true));
    while (win.childElementCount > n) win.lastElementChild.remove();
    win.style.transform = `translateY(${first * ROW}px)`;
    for (let i = 0; i < n; i++) show(win.children[i], items[first + i]);
    if (n > 0 && !firstShown) {
      firstShown = true;
      performance.mark('herald:first-events');
    }
  }

  async function connect() {
    const my = ++gen;
    if (es) es.close();
    es = null;
    queue = [];
    items = [];
    list.scrollTop = 0;
    draw();
    err.hidden = true;
    status.textContent = 'connecting…';
    const params = new URLSearchParams();
    for (const [k] of FILTERS) if (inputs[k].value.trim()) params.set(k, inputs[k].value.trim());
    const refused = (e) => {
      if (my !== gen) return;
      if (es) es.close();
      err.textContent = e instanceof ApiError ? `The stream was refused: ${e.message}` : String(e);
      err.hidden = false;
      status.textContent = 'stopped';
      status.className = 'status';
    };
    let head = 0;
    try {
      head = (await api('GET', '/v1/status')).head;
    } catch (e) {
      return refused(e);
    }
    if (my !== gen) return;
    params.set('after', String(Math.max(0, head - BACKLOG)));
    es = new EventSource('/v1/stream?' + params);
    let opened = false;
    es.onopen = () => { opened = true; if (!paused) { status.textContent = 'live'; status.className = 'status live'; } };
    es.onmessage = (m) => {
      // As little as possible per event: the frame does the rest.
      seen++;
      queue.push(m.data);
      if (queue.length > 2 * CAP) {
        missed += queue.length - CAP;
        queue = queue.slice(-CAP);
      }
      schedule();
    };
    es.onerror = () => {
      if (!opened) {
        // Refused before it opened: the API says why (an EventSource
        // only sees an error). A filter the token may not read is a 403.
        const probe = new URLSearchParams(params);
        probe.set('limit', '1');
        probe.set('after', String(head));
        api('GET', '/v1/events?' + probe).then(() => {}, refused);
      }
      if (es && es.readyState === EventSource.CLOSED) {
        status.textContent = 'disconnected';
        status.className = 'status';
      } else {
        status.textContent = 'reconnecting…';
      }
    };
  }

  function apply() {
    const params = new URLSearchParams();
    for (const [k] of FILTERS) if (inputs[k].value.trim()) params.set(k, inputs[k].value.trim());
    const s = params.toString();
    history.replaceState(null, '', '/ui/' + (s ? '?' + s : ''));
    seen = 0;
    missed = 0;
    counter.textContent = '';
    connect();
  }

  addEventListener('pagehide', () => es && es.close());
  await connect();
}

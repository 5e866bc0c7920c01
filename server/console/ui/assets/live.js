// The live events page: the newest events first, streamed over SSE.
// Frames are queued as they arrive and drawn once per animation frame, so
// that 2,000 events a second cost one small DOM update per frame; the
// list and the queue are capped (CAP rows), so memory stays bounded.
import {api, ApiError} from './api.js';
import {h, fill, clock, short, eventHref, corrHref, num} from './dom.js';

export const title = 'Live events';

const CAP = 500; // rows kept on the page
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
  const list = h('div', {class: 'events', id: 'events', role: 'list'});
  const err = h('p', {class: 'error', id: 'live-error', hidden: true});
  fill(main,
    h('div', {class: 'page-head'}, h('h1', {}, 'Live events'), h('div', {class: 'tools'}, status, counter, pauseBtn)),
    form, err,
    h('div', {class: 'events-head'}, h('span', {}, 'time'), h('span', {}, 'name'), h('span', {}, 'subject'),
      h('span', {}, 'source'), h('span', {}, 'correlation'), h('span', {class: 'num'}, 'position')),
    list);

  let es = null, queue = [], scheduled = false, paused = false, seen = 0, missed = 0, gen = 0, firstShown = false;

  function setPaused(p) {
    paused = p;
    pauseBtn.textContent = p ? 'Resume' : 'Pause';
    pauseBtn.classList.toggle('armed', p);
    status.textContent = p ? 'paused' : (es && es.readyState === 1 ? 'live' : 'connecting…');
    status.className = 'status ' + (p ? 'paused' : 'live');
    if (!p) schedule();
  }

  function schedule() {
    if (scheduled || paused) return;
    scheduled = true;
    requestAnimationFrame(flush);
  }

  function row(e) {
    return h('div', {class: 'ev', role: 'listitem', dataset: {position: e.position, name: e.name}},
      h('span', {class: 't'}, clock(e.timestamp)),
      h('a', {class: 'n', href: eventHref(e.id)}, e.name),
      h('span', {class: 's'}, e.subject || ''),
      h('span', {class: 'src'}, e.source_plugin || ''),
      e.correlation_id ? h('a', {class: 'c', href: corrHref(e.correlation_id), title: e.correlation_id}, short(e.correlation_id)) : h('span'),
      h('span', {class: 'num'}, e.position));
  }

  function flush() {
    scheduled = false;
    if (paused || !queue.length) return;
    const batch = queue.length > CAP ? queue.slice(-CAP) : queue;
    queue = [];
    const frag = document.createDocumentFragment();
    for (let i = batch.length - 1; i >= 0; i--) {
      let e;
      try { e = JSON.parse(batch[i]); } catch { continue; }
      frag.append(row(e));
    }
    list.prepend(frag);
    if (!firstShown) {
      firstShown = true;
      performance.mark('herald:first-events');
    }
    let extra = list.childElementCount - CAP;
    while (extra-- > 0) list.lastElementChild.remove();
    counter.textContent = `${num(seen)} received` + (missed ? `, ${num(missed)} skipped while paused or busy` : '');
  }

  async function connect() {
    const my = ++gen;
    if (es) es.close();
    es = null;
    queue = [];
    list.replaceChildren();
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
      seen++;
      list.dataset.received = seen;
      if (paused) status.textContent = `paused · ${num(queue.length + 1)} new`;
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

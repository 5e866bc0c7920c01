// A correlation's chain: the causal tree (each event under its cause), a
// timeline, and every subscription's outcome of every event (succeeded,
// retrying, dead-lettered, discarded, redriven), with its attempts — each
// failed one with its duration and error, and the successful one with its
// duration — and its last error. It follows the chain live: new events of
// the correlation arrive over SSE, and its outcomes are re-read every two
// seconds.
import {api} from './api.js';
import {h, fill, clock, ms, durMs, eventHref, short} from './dom.js';

export const title = 'Correlation';

// An outcome says whether it comes from a redrive of the event's dead
// letter (its attempts then count those before the redrive too).
function outcomeLabel(o) {
  const label = statusLabel(o);
  return o.redriven ? 'redriven, ' + label : label;
}

function statusLabel(o) {
  switch (o.status) {
    case 'succeeded': return o.attempts > 1 ? `succeeded after ${o.attempts} attempts` : 'succeeded';
    case 'retrying': return `retrying (${o.attempts} attempt${o.attempts === 1 ? '' : 's'})`;
    case 'dead_lettered': return `dead-lettered after ${o.attempts} attempt${o.attempts === 1 ? '' : 's'}`;
    case 'discarded': return 'discarded';
  }
  return o.status;
}

// attempts lists an outcome's attempts when one failed: each failed one
// (the outcome keeps the last 16) with its duration and error, then the
// successful one with its duration. null when none failed.
function attempts(o) {
  const hist = o.history || [];
  if (!hist.length) return null;
  const row = (cls, n, dur, ...rest) => h('li', {class: 'attempt ' + cls, dataset: {attempt: n, duration: dur}},
    h('span', {class: 'n'}, `#${n}`), ' · ', h('span', {class: 'dur'}, ms(durMs(dur))), ' · ', ...rest);
  const rows = hist.map((a) => row('failed', a.attempt, a.duration, h('span', {class: 'err-text'}, a.error)));
  if (hist[0].attempt > 1) {
    rows.unshift(h('li', {class: 'muted'}, `attempt${hist[0].attempt > 2 ? `s 1–${hist[0].attempt - 1}` : ' 1'}: not kept (an outcome keeps the last 16; a dead letter up to 100)`));
  }
  if (o.status === 'succeeded') rows.push(row('ok', o.attempts, o.duration, h('span', {class: 'ok-text'}, 'succeeded')));
  return h('ol', {class: 'attempts'}, rows);
}

function outcomes(te) {
  if (!te.outcomes || !te.outcomes.length) return h('div', {class: 'muted small'}, 'no subscription handled it');
  return h('ul', {class: 'outcomes'}, te.outcomes.map((o) => {
    const tried = attempts(o);
    return h('li', {class: 'outcome ' + o.status,
      dataset: o.redriven ? {sub: o.subscription, status: o.status, redriven: 'true'} : {sub: o.subscription, status: o.status}},
    h('span', {class: 'pill ' + o.status}, outcomeLabel(o)), ' ',
    h('strong', {}, o.subscription),
    h('span', {class: 'muted', title: 'the last attempt\'s duration'}, ` · ${ms(durMs(o.duration))} · ${clock(o.updated_at)}`),
    // The history's last failed attempt says the last error.
    tried || (o.last_error ? h('div', {class: 'last-error'}, o.last_error) : null));
  }));
}

function tree(events) {
  const byId = new Map(events.map((te) => [te.event.id, te]));
  const kids = new Map();
  const roots = [];
  for (const te of events) {
    const c = te.event.causation_id;
    if (c && c !== te.event.id && byId.has(c)) {
      if (!kids.has(c)) kids.set(c, []);
      kids.get(c).push(te);
    } else roots.push(te);
  }
  const t0 = Date.parse(events[0].event.timestamp);
  const node = (te, depth) => h('li', {class: 'node', dataset: {name: te.event.name}},
    h('div', {class: 'node-head'},
      h('a', {href: eventHref(te.event.id), class: 'ev-name'}, te.event.name),
      h('span', {class: 'muted'}, ` +${ms(Date.parse(te.event.timestamp) - t0)} · #${te.event.position}`),
      te.event.source_plugin ? h('span', {class: 'muted'}, ` · ${te.event.source_plugin}`) : null),
    outcomes(te),
    depth < 64 && kids.has(te.event.id) ? h('ul', {}, kids.get(te.event.id).map((k) => node(k, depth + 1))) : null);
  return h('ul', {class: 'tree', id: 'tree'}, roots.map((r) => node(r, 0)));
}

function timeline(events) {
  const t0 = Date.parse(events[0].event.timestamp);
  let t1 = t0 + 1;
  for (const te of events) {
    t1 = Math.max(t1, Date.parse(te.event.timestamp));
    for (const o of te.outcomes || []) t1 = Math.max(t1, Date.parse(o.updated_at) || 0);
  }
  const W = 900, L = 230, rowH = 26, H = events.length * rowH + 30;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - 20);
  const svg = h('svg:svg', {viewBox: `0 0 ${W} ${H}`, class: 'timeline', id: 'timeline', role: 'img', 'aria-label': 'timeline of the chain'});
  for (let i = 0; i <= 4; i++) {
    const gx = L + (i / 4) * (W - L - 20);
    svg.append(h('svg:line', {x1: gx, x2: gx, y1: 0, y2: H - 20, class: 'grid'}),
      h('svg:text', {x: gx, y: H - 5, class: 'axis', 'text-anchor': 'middle'}, '+' + ms((i / 4) * (t1 - t0))));
  }
  events.forEach((te, i) => {
    const y = i * rowH + 14, t = Date.parse(te.event.timestamp);
    svg.append(h('svg:text', {x: 4, y: y + 4, class: 'label'}, te.event.name));
    for (const o of te.outcomes || []) {
      const end = Date.parse(o.updated_at) || t;
      svg.append(h('svg:rect', {x: x(t), y: y - 5, width: Math.max(2, x(end) - x(t)), height: 10, rx: 3, class: 'bar ' + o.status},
        h('svg:title', {}, `${o.subscription}: ${outcomeLabel(o)}, ${ms(durMs(o.duration))}`)));
    }
    svg.append(h('svg:circle', {cx: x(t), cy: y, r: 5, class: 'dot'}, h('svg:title', {}, `${te.event.name} at ${clock(te.event.timestamp)}`)));
  });
  return svg;
}

export default async function correlation(main, {arg: id}) {
  const head = h('div', {class: 'page-head'}, h('h1', {}, h('span', {class: 'muted'}, 'Correlation '), short(id)),
    h('div', {class: 'tools'}, h('span', {class: 'status', id: 'corr-status'}, ''), h('a', {class: 'button secondary', href: '/ui/?correlation_id=' + encodeURIComponent(id)}, 'Its events live')));
  const body = h('div', {id: 'corr-body'});
  fill(main, head, h('p', {class: 'muted mono'}, id), body);
  let last = '';
  async function load() {
    let tr;
    try {
      tr = await api('GET', '/v1/correlations/' + encodeURIComponent(id));
    } catch (err) {
      fill(body, h('p', {class: 'error'}, err.message));
      return false;
    }
    const key = JSON.stringify(tr);
    if (key === last) return pending(tr);
    last = key;
    const n = tr.events.length;
    const counts = {};
    for (const te of tr.events) for (const o of te.outcomes || []) counts[o.status] = (counts[o.status] || 0) + 1;
    fill(body,
      h('div', {class: 'summary', id: 'corr-summary'}, h('span', {}, `${n} event${n === 1 ? '' : 's'}`),
        Object.entries(counts).map(([s, c]) => h('span', {class: 'pill ' + s}, `${c} ${s.replace('_', '-')}`))),
      h('div', {class: 'cols'},
        h('section', {class: 'card grow'}, h('h2', {}, 'Causal tree'), tree(tr.events)),
      ),
      h('section', {class: 'card'}, h('h2', {}, 'Timeline'), timeline(tr.events)));
    return pending(tr);
  }
  const pending = (tr) => tr.events.some((te) => (te.outcomes || []).some((o) => o.status === 'retrying'));
  const st = document.getElementById('corr-status');
  let timer = null, busy = false;
  const refresh = async () => {
    if (busy) return;
    busy = true;
    try {
      const more = await load();
      st.textContent = more ? 'running…' : 'up to date';
      st.className = 'status ' + (more ? 'live' : '');
    } finally { busy = false; }
  };
  await refresh();
  timer = setInterval(refresh, 2000);
  // New events of the chain arrive over the stream.
  let es = null;
  try {
    const s = await api('GET', '/v1/status');
    es = new EventSource(`/v1/stream?correlation_id=${encodeURIComponent(id)}&after=${s.head}`);
    es.onmessage = () => refresh();
  } catch { /* polling alone keeps the page current */ }
  addEventListener('pagehide', () => { clearInterval(timer); if (es) es.close(); });
}

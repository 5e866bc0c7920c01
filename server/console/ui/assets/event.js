// One event: its data as JSON, its metadata, its place in the log and in
// its subject, links to its correlation chain and its cause. Fields the
// store keeps encrypted (x-sensitive) are marked; a field whose subject
// was forgotten reads null and is marked shredded. The page never shows
// more than the server decodes for this session's token.
import {api} from './api.js';
import {h, fill, when, jsonView, eventHref, corrHref, num} from './dom.js';

export const title = 'Event';

function get(obj, path) {
  for (const k of path) {
    if (obj === null || typeof obj !== 'object') return undefined;
    obj = obj[k];
  }
  return obj;
}

export default async function event(main, {arg: id}) {
  let e;
  try {
    e = await api('GET', '/v1/events/' + encodeURIComponent(id));
  } catch (err) {
    fill(main, h('h1', {}, 'Event'), h('p', {class: 'error'}, err.message));
    return;
  }
  // The stored form tells which fields are encrypted at rest.
  let raw = null;
  try {
    const page = await api('GET', `/v1/events?after=${e.position - 1}&limit=1&raw=true&name=${encodeURIComponent(e.name)}`);
    if (page.events && page.events[0] && page.events[0].id === e.id) raw = page.events[0];
  } catch { /* the stored form is optional */ }
  const mark = (path) => {
    if (!raw) return null;
    const stored = get(raw.data, path), shown = get(e.data, path);
    if (JSON.stringify(stored) === JSON.stringify(shown)) return null;
    if (shown === null) return h('span', {class: 'badge shredded', title: 'the subject was forgotten: this field can no longer be read'}, 'shredded');
    return h('span', {class: 'badge sensitive', title: 'encrypted in the store with the subject\'s key; decoded for this token'}, 'encrypted at rest');
  };

  const meta = [
    ['id', e.id],
    ['name', e.name],
    ['position', num(e.position)],
    ['time', when(e.timestamp)],
    ['subject', e.subject || '—'],
    ['subject version', h('span', {id: 'subject-version'}, e.subject ? '…' : '—')],
    ['data version', e.version || 1],
    ['source', e.source_plugin || '—'],
    ['priority', e.priority || 'normal'],
    ['correlation', e.correlation_id ? h('a', {href: corrHref(e.correlation_id), id: 'to-correlation'}, e.correlation_id) : '—'],
    ['cause', e.causation_id ? h('a', {href: eventHref(e.causation_id), id: 'to-cause'}, e.causation_id) : '— (the chain starts here)'],
  ];
  const md = e.metadata && Object.keys(e.metadata).length
    ? h('table', {class: 'kv'}, Object.entries(e.metadata).map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v))))
    : h('p', {class: 'muted'}, 'none');
  fill(main,
    h('div', {class: 'page-head'}, h('h1', {}, h('span', {class: 'muted'}, 'Event '), e.name),
      h('div', {class: 'tools'}, e.correlation_id ? h('a', {class: 'button', href: corrHref(e.correlation_id)}, 'Correlation chain →') : null)),
    h('div', {class: 'cols'},
      h('section', {class: 'card'}, h('h2', {}, 'Event'), h('table', {class: 'kv', id: 'event-meta'},
        meta.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v))))),
      h('section', {class: 'card grow'}, h('h2', {}, 'Data'), h('div', {id: 'event-data'}, jsonView(e.data === undefined ? null : e.data, mark)),
        h('h2', {}, 'Metadata'), md)));
  if (e.subject) {
    try {
      const s = await api('GET', '/v1/subjects/' + encodeURIComponent(e.subject));
      fill(document.getElementById('subject-version'),
        `${num(s.version)} (events at positions ${num(s.first_position)}…${num(s.last_position)})`);
    } catch (err) {
      fill(document.getElementById('subject-version'), '—');
    }
  }
}

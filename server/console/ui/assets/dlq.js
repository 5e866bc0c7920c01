// Dead letters with their error history (each attempt's end, duration and
// error; up to 100 attempts, the first and the last 99), grouped by
// subscription:
// Redrive and Discard for each entry and for each subscription's entries.
import {api} from './api.js';
import {h, fill, when, ms, durMs, eventHref, corrHref, notice, confirmButton, short} from './dom.js';

export const title = 'Dead letters';

export default async function dlq(main, {session}) {
  const body = h('div', {id: 'dlq'});
  fill(main, h('div', {class: 'page-head'}, h('h1', {}, 'Dead letters')), body);
  if (!session.admin) {
    fill(body, h('p', {class: 'muted card'}, 'The dead-letter queue needs an admin token.'));
    return;
  }
  async function act(method, path, what) {
    try {
      const r = await api(method, path);
      notice(`${what}: ${r && (r.redriven ?? r.discarded)}`);
    } catch (err) { notice(err.message, 'error'); }
    await load();
  }
  let last = '';
  async function load() {
    const r = await api('GET', '/v1/dlq?limit=1000');
    const key = JSON.stringify(r);
    if (key === last || body.querySelector('button.armed')) return;
    last = key;
    const groups = new Map();
    for (const d of r.dead_letters) {
      if (!groups.has(d.subscription)) groups.set(d.subscription, []);
      groups.get(d.subscription).push(d);
    }
    if (!groups.size) {
      fill(body, h('p', {class: 'muted card', id: 'dlq-empty'}, 'No dead letters. Every event was handled or is being retried.'));
      return;
    }
    fill(body, [...groups].map(([sub, dls]) => h('section', {class: 'card dlq-group', id: 'dlq-' + sub, dataset: {sub}},
      h('div', {class: 'group-head'}, h('h2', {}, sub, h('span', {class: 'muted'}, ` · ${dls.length} dead letter${dls.length === 1 ? '' : 's'}`)),
        h('div', {class: 'tools'},
          h('button', {type: 'button', dataset: {action: 'redrive-all'}, onclick: () => act('POST', '/v1/dlq/redrive?subscription=' + encodeURIComponent(sub), `${sub}: redriven`)}, 'Redrive all'),
          confirmButton('Discard all', 'danger', () => act('DELETE', '/v1/dlq?subscription=' + encodeURIComponent(sub), `${sub}: discarded`), undefined, 'discard:' + sub))),
      dls.map((d) => h('article', {class: 'dl', dataset: {id: d.id, event: d.event.id}},
        h('div', {class: 'dl-head'},
          h('a', {href: eventHref(d.event.id), class: 'ev-name'}, d.event.name),
          h('span', {class: 'muted'}, ` #${d.event.position} · dead ${when(d.dead_at)} · `),
          h('a', {href: corrHref(d.event.correlation_id), class: 'muted'}, 'chain ' + short(d.event.correlation_id)),
          d.permanent ? h('span', {class: 'pill dead_lettered'}, 'permanent') : null,
          d.redrive ? h('span', {class: 'pill retrying'}, 'redrive pending') : null,
          h('div', {class: 'tools'},
            h('button', {type: 'button', class: 'secondary', dataset: {action: 'redrive'}, onclick: () => act('POST', `/v1/dlq/${encodeURIComponent(d.id)}/redrive`, 'redriven')}, 'Redrive'),
            h('button', {type: 'button', class: 'danger', dataset: {action: 'discard'}, onclick: () => act('DELETE', '/v1/dlq/' + encodeURIComponent(d.id), 'discarded')}, 'Discard'))),
        h('ol', {class: 'errors'}, (d.errors || []).map((e) => h('li', {},
          h('span', {class: 'muted'}, `attempt ${e.attempt} · ${when(e.at)} · `),
          // No duration: no handler ran, or recorded before herald kept it.
          durMs(e.duration) ? h('span', {class: 'dur'}, `${ms(durMs(e.duration))} · `) : null,
          h('span', {class: 'err-text'}, e.error)))))))));
  }
  await load();
  const timer = setInterval(() => load().catch(() => {}), 5000);
  addEventListener('pagehide', () => clearInterval(timer));
}

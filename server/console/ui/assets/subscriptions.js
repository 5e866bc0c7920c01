// Push subscriptions: each one's filter, endpoint, position and lag, a
// sparkline of the events it handled over the server's recent samples,
// and its handled / failed / dead counts; create, replay, delete.
import {api} from './api.js';
import {h, fill, num, notice, confirmButton} from './dom.js';
import {sparkline} from './chart.js';

export const title = 'Subscriptions';

export default async function subscriptions(main) {
  const list = h('div', {id: 'subs'});
  const created = h('div', {id: 'created'});
  const f = {};
  const form = h('form', {class: 'card create', id: 'create-sub', onsubmit: async (e) => {
    e.preventDefault();
    const body = {filter: f.filter.value.trim(), endpoint: f.endpoint.value.trim()};
    if (f.attempts.value) body.max_attempts = Number(f.attempts.value);
    try {
      const s = await api('PUT', '/v1/subscriptions/' + encodeURIComponent(f.name.value.trim()), body);
      fill(created, h('div', {class: 'card secret'}, h('strong', {}, `Created ${s.name}. `),
        'Its signing secret is shown this once: ', h('code', {id: 'sub-secret'}, s.secret || '(set)')));
      form.reset();
      await load();
    } catch (err) { notice(err.message, 'error'); }
  }},
  h('h2', {}, 'New subscription'),
  h('div', {class: 'row'},
    h('label', {}, 'Name', f.name = h('input', {required: true, pattern: '[a-zA-Z0-9_.\\-]+', placeholder: 'archiver', id: 'new-name'})),
    h('label', {}, 'Filter', f.filter = h('input', {required: true, placeholder: 'recording.>', id: 'new-filter'})),
    h('label', {class: 'grow'}, 'Endpoint', f.endpoint = h('input', {required: true, type: 'url', placeholder: 'https://archiver.example/hook', id: 'new-endpoint'})),
    h('label', {}, 'Max attempts', f.attempts = h('input', {type: 'number', min: 1, max: 100, placeholder: '10', id: 'new-attempts'})),
    h('button', {type: 'submit', id: 'create'}, 'Create')));
  fill(main, h('div', {class: 'page-head'}, h('h1', {}, 'Subscriptions')), list, created, form);

  async function replay(name, input) {
    const v = input.value.trim();
    if (!v) return notice('give a position or a time', 'error');
    const body = /^\d+$/.test(v) ? {position: Number(v)} : {time: new Date(v).toISOString()};
    try {
      await api('POST', `/v1/subscriptions/${encodeURIComponent(name)}/replay`, body);
      notice(`${name} replays from ${v}`);
      await load();
    } catch (err) { notice(err.message, 'error'); }
  }

  let last = '';
  async function load() {
    const [subs, hist] = await Promise.all([api('GET', '/v1/subscriptions'), api('GET', '/v1/history').catch(() => null)]);
    const key = JSON.stringify([subs, hist && hist.subscriptions]);
    // Keep the table while the user types a replay target or arms a delete.
    if (key === last || document.activeElement && document.activeElement.dataset.replay || list.querySelector('button.armed')) return;
    last = key;
    if (!subs.subscriptions.length) {
      fill(list, h('p', {class: 'muted card'}, 'No push subscriptions yet.'));
      return;
    }
    const per = hist ? hist.interval_seconds : 10;
    fill(list, h('table', {class: 'grid-table', id: 'subs-table'},
      h('thead', {}, h('tr', {}, ['name', 'filter', 'endpoint', 'position', 'lag', `handled / ${per}s`, 'handled', 'failed', 'dead', ''].map((c) => h('th', {}, c)))),
      h('tbody', {}, subs.subscriptions.map((s) => {
        const st = s.stats || {};
        const at = h('input', {class: 'small-input', placeholder: 'position or time', 'aria-label': 'replay from', dataset: {replay: s.name}});
        return h('tr', {dataset: {sub: s.name}},
          h('td', {}, h('strong', {}, s.name), s.running ? '' : h('span', {class: 'pill dead_lettered', title: s.paused === 'dead_letter_cap' ? 'it holds its cap of dead letters: discard or redrive them to resume it' : 'its owner holds no token'}, ' paused')),
          h('td', {class: 'mono'}, s.filter),
          h('td', {class: 'mono ellipsis', title: s.endpoint}, s.endpoint),
          h('td', {class: 'num'}, num(s.position)),
          h('td', {class: 'num' + (s.lag > 0 ? ' warn' : '')}, num(s.lag)),
          h('td', {}, sparkline(hist && hist.subscriptions[s.name] ? hist.subscriptions[s.name].slice(-30) : [], {width: 100})),
          h('td', {class: 'num'}, num(st.handled)),
          h('td', {class: 'num' + (st.failed ? ' warn' : '')}, num(st.failed)),
          h('td', {class: 'num'}, s.dead_letters ? h('a', {href: '/ui/dlq#' + encodeURIComponent(s.name), class: 'bad'}, num(s.dead_letters)) : '0'),
          h('td', {class: 'actions'}, at,
            h('button', {type: 'button', class: 'secondary', dataset: {action: 'replay'}, onclick: () => replay(s.name, at)}, 'Replay'),
            confirmButton('Delete', 'danger', async () => {
              try {
                await api('DELETE', '/v1/subscriptions/' + encodeURIComponent(s.name));
                notice(`${s.name} deleted`);
                await load();
              } catch (err) { notice(err.message, 'error'); }
            }, undefined, 'delete:' + s.name)));
      }))));
  }
  await load();
  const timer = setInterval(() => load().catch(() => {}), 5000);
  addEventListener('pagehide', () => clearInterval(timer));
}

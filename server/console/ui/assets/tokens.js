// Tokens (admin): each one's identity and rights; create one (its secret
// is shown once), revoke one (which ends its console sessions and streams).
import {api} from './api.js';
import {h, fill, when, notice, confirmButton} from './dom.js';

export const title = 'Tokens';

const list = (v) => v.split(/[\s,]+/).filter(Boolean);

export default async function tokens(main, {session}) {
  const body = h('div', {id: 'tokens'});
  const created = h('div', {id: 'token-created'});
  fill(main, h('div', {class: 'page-head'}, h('h1', {}, 'Tokens')), body, created);
  if (!session.admin) {
    fill(body, h('p', {class: 'muted card'}, 'Tokens need an admin token.'));
    return;
  }
  const f = {};
  const form = h('form', {class: 'card create', id: 'create-token', onsubmit: async (e) => {
    e.preventDefault();
    try {
      const r = await api('POST', '/v1/tokens', {identity: f.identity.value.trim(), publish: list(f.publish.value),
        subscribe: list(f.subscribe.value), admin: f.admin.checked, rate: Number(f.rate.value) || 0, burst: 0});
      fill(created, h('div', {class: 'card secret'}, h('strong', {}, `Created a token for ${r.info.identity}. `),
        'Copy it now, it is shown this once: ', h('code', {id: 'new-token'}, r.token)));
      form.reset();
      await load();
    } catch (err) { notice(err.message, 'error'); }
  }}, h('h2', {}, 'New token'), h('div', {class: 'row'},
    h('label', {}, 'Identity', f.identity = h('input', {required: true, placeholder: 'recorder', id: 'tok-identity'})),
    h('label', {class: 'grow'}, 'Publish patterns', f.publish = h('input', {placeholder: 'recording.>', id: 'tok-publish'})),
    h('label', {class: 'grow'}, 'Subscribe patterns', f.subscribe = h('input', {placeholder: 'recording.> transcription.*', id: 'tok-subscribe'})),
    h('label', {}, 'Rate (events/s)', f.rate = h('input', {type: 'number', min: 0, placeholder: 'no limit', id: 'tok-rate'})),
    h('label', {class: 'check'}, f.admin = h('input', {type: 'checkbox', id: 'tok-admin'}), 'admin'),
    h('button', {type: 'submit', id: 'tok-create'}, 'Create')));
  async function load() {
    const r = await api('GET', '/v1/tokens');
    fill(body, h('table', {class: 'grid-table', id: 'tokens-table'},
      h('thead', {}, h('tr', {}, ['identity', 'id', 'rights', 'rate', 'created', ''].map((c) => h('th', {}, c)))),
      h('tbody', {}, r.tokens.map((t) => h('tr', {dataset: {token: t.id}},
        h('td', {}, h('strong', {}, t.identity), t.admin ? h('span', {class: 'pill succeeded'}, 'admin') : null),
        h('td', {class: 'mono'}, t.id),
        h('td', {class: 'mono small'}, t.admin ? 'everything' : [t.publish && t.publish.length ? 'publish ' + t.publish.join(' ') : null,
          t.subscribe && t.subscribe.length ? 'subscribe ' + t.subscribe.join(' ') : null].filter(Boolean).join(' · ') || 'nothing'),
        h('td', {class: 'num'}, t.rate ? `${t.rate}/s` : '—'),
        h('td', {}, t.from_config ? 'configuration file' : when(t.created_at)),
        h('td', {class: 'actions'}, t.from_config ? null : confirmButton('Revoke', 'danger', async () => {
          try {
            await api('DELETE', '/v1/tokens/' + encodeURIComponent(t.id));
            notice(`${t.identity}'s token revoked`);
            await load();
          } catch (err) { notice(err.message, 'error'); }
        }, undefined, 'revoke:' + t.id)))))), form);
  }
  await load();
}

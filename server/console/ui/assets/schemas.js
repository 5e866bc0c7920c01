// Registered JSON Schemas by event name and data version; an admin may
// register one.
import {api} from './api.js';
import {h, fill, jsonView, notice} from './dom.js';

export const title = 'Schemas';

export default async function schemas(main, {session}) {
  const list = h('div', {id: 'schemas'});
  const view = h('div', {id: 'schema-view'});
  fill(main, h('div', {class: 'page-head'}, h('h1', {}, 'Schemas')), h('div', {class: 'cols'}, list, view));
  async function show(s) {
    try {
      const doc = await api('GET', `/v1/schemas/${encodeURIComponent(s.name)}/${s.version}`);
      fill(view, h('section', {class: 'card grow'}, h('h2', {}, `${s.name} v${s.version}`),
        jsonView(doc, (path) => path[path.length - 1] === 'x-sensitive' ? h('span', {class: 'badge sensitive'}, 'encrypted at rest') : null)));
      for (const b of list.querySelectorAll('button[data-schema]')) b.classList.toggle('active', b.dataset.schema === `${s.name}/${s.version}`);
    } catch (err) { notice(err.message, 'error'); }
  }
  async function load() {
    const r = await api('GET', '/v1/schemas');
    const items = r.schemas || [];
    const form = session.admin ? register() : null;
    fill(list, h('section', {class: 'card'}, h('h2', {}, `${items.length} schema${items.length === 1 ? '' : 's'}`),
      items.length ? h('ul', {class: 'plain'}, items.map((s) => h('li', {},
        h('button', {type: 'button', class: 'link', dataset: {schema: `${s.name}/${s.version}`}, onclick: () => show(s)}, s.name, h('span', {class: 'muted'}, ` v${s.version}`)))))
        : h('p', {class: 'muted'}, 'No schema is registered: events of any shape are accepted.')), form);
    if (items.length) await show(items[0]);
  }
  function register() {
    const name = h('input', {required: true, placeholder: 'recording.ended', id: 'schema-name'});
    const version = h('input', {type: 'number', min: 1, value: 1, required: true, id: 'schema-version'});
    const text = h('textarea', {rows: 6, required: true, id: 'schema-text', spellcheck: 'false'}, '{"type": "object"}');
    return h('form', {class: 'card', onsubmit: async (e) => {
      e.preventDefault();
      let doc;
      try { doc = JSON.parse(text.value); } catch { return notice('the schema is not valid JSON', 'error'); }
      try {
        await api('PUT', `/v1/schemas/${encodeURIComponent(name.value.trim())}/${version.value}`, doc);
        notice(`registered ${name.value} v${version.value}`);
        await load();
      } catch (err) { notice(err.message, 'error'); }
    }}, h('h2', {}, 'Register a schema'), h('label', {}, 'Event name', name), h('label', {}, 'Data version', version),
    h('label', {}, 'JSON Schema', text), h('button', {type: 'submit'}, 'Register'));
  }
  await load();
}

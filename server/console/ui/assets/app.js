// The console's entry: it finds the session, marks the navigation and
// loads the module of the page the path names.
import {session, logout} from './api.js';
import {h, fill} from './dom.js';

const pages = [
  [/^\/ui\/?$/, 'live'],
  [/^\/ui\/events\/(.+)$/, 'event'],
  [/^\/ui\/correlations\/(.+)$/, 'correlation'],
  [/^\/ui\/subscriptions\/?$/, 'subscriptions'],
  [/^\/ui\/dlq\/?$/, 'dlq'],
  [/^\/ui\/schemas\/?$/, 'schemas'],
  [/^\/ui\/tokens\/?$/, 'tokens'],
  [/^\/ui\/metrics\/?$/, 'metrics'],
];

function route() {
  for (const [re, name] of pages) {
    const m = location.pathname.match(re);
    if (m) return [name, m[1] ? decodeURIComponent(m[1]) : null];
  }
  return [null, null];
}

async function main() {
  const main = document.getElementById('main');
  const [page, arg] = route();
  // The page's module loads while the session is asked for.
  const [sess, mod] = await Promise.all([session(), page ? import(`./${page}.js`) : null]);
  const who = document.getElementById('who');
  if (sess.auth) {
    fill(who, h('span', {class: 'identity', title: 'the token this console acts as'}, sess.identity, sess.admin ? ' (admin)' : ''),
      h('button', {type: 'button', id: 'logout', class: 'link', onclick: logout}, 'Log out'));
  } else {
    fill(who, h('span', {class: 'muted', title: 'this server has no tokens: anyone on this machine may do everything'}, 'open server'));
  }
  for (const a of document.querySelectorAll('#nav a[data-admin]')) if (!sess.admin) a.remove();
  const navPage = page === 'event' || page === 'correlation' ? 'live' : page;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === navPage);
  if (!page) {
    fill(main, h('h1', {}, 'No such page'), h('p', {}, h('a', {href: '/ui/'}, 'Back to the live events')));
    return;
  }
  fill(main);
  document.title = `${mod.title || page} — herald`;
  await mod.default(main, {session: sess, arg});
}

main().catch((err) => {
  if (err && err.message === 'not logged in') return;
  const m = document.getElementById('main');
  fill(m, h('p', {class: 'error'}, String(err && err.message || err)));
});

// The server's recent activity from GET /v1/history (a ring of samples it
// keeps): publish rate, webhook delivery latency p50/p99, errors and dead
// letters; the server's status, and its cluster when the status says.
import {api} from './api.js';
import {h, fill, num, ms, durMs} from './dom.js';
import {lineChart} from './chart.js';

export const title = 'Metrics';

function statusCard(st) {
  const rows = [['version', st.version || '—'], ['store', st.store || '—'], ['log head', num(st.head)],
    ['push subscriptions', num(st.subscriptions)], ['status', st.status]];
  return [h('section', {class: 'card', id: 'server-status'}, h('h2', {}, 'Server'),
    h('table', {class: 'kv'}, rows.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v))))), clusterCard(st.cluster)];
}

// clusterCard shows the cluster of a NATS JetStream store, as GET
// /v1/status reports it: its nodes (leader first) and the store's
// consumers; nothing for another store.
function clusterCard(c) {
  if (!c) return null;
  const nodes = c.nodes || [];
  return h('section', {class: 'card', id: 'cluster'}, h('h2', {}, c.name ? `Cluster ${c.name}` : 'Single node'),
    c.error ? h('p', {class: 'error'}, c.error) : null,
    h('table', {class: 'kv'},
      h('tr', {}, h('th', {}, 'leader'), h('td', {id: 'cluster-leader'}, c.leader || 'none (no quorum)')),
      h('tr', {}, h('th', {}, 'replicas'), h('td', {}, num(c.replicas)))),
    nodes.length ? h('table', {class: 'grid-table nodes', id: 'cluster-nodes'},
      h('thead', {}, h('tr', {}, ['node', 'state', 'lag', 'last seen'].map((x) => h('th', {}, x)))),
      h('tbody', {}, nodes.map((n) => {
        const state = n.leader ? 'leader' : n.offline ? 'offline' : n.current ? 'current' : 'behind';
        const cls = n.leader || n.current ? 'succeeded' : n.offline ? 'dead_lettered' : 'retrying';
        return h('tr', {dataset: {node: n.name}}, h('td', {}, n.name), h('td', {}, h('span', {class: 'pill ' + cls}, state)),
          h('td', {class: 'num'}, num(n.lag)), h('td', {}, n.leader ? '—' : ms(durMs(n.last_seen))));
      }))) : null,
    c.consumers && c.consumers.length ? h('table', {class: 'grid-table', id: 'cluster-consumers'},
      h('thead', {}, h('tr', {}, ['consumer of', 'pending', 'unacked'].map((x) => h('th', {}, x)))),
      h('tbody', {}, c.consumers.map((k) => h('tr', {}, h('td', {}, k.subscription), h('td', {class: 'num'}, num(k.pending)),
        h('td', {class: 'num', title: `${num(k.redelivered)} redelivered`}, num(k.ack_pending)))))) : null);
}

export default async function metrics(main) {
  const charts = h('div', {class: 'charts', id: 'charts'});
  const side = h('div', {class: 'side'});
  fill(main, h('div', {class: 'page-head'}, h('h1', {}, 'Metrics'), h('span', {class: 'muted', id: 'window'})),
    h('div', {class: 'cols'}, charts, side));
  async function load() {
    const [hist, st] = await Promise.all([api('GET', '/v1/history'), api('GET', '/v1/status')]);
    const pts = hist.points;
    const times = pts.map((p) => Date.parse(p.time));
    const last = pts[pts.length - 1] || {};
    // The latest interval with deliveries: the last may have had none.
    const lastOf = (k) => { for (let i = pts.length - 1; i >= 0; i--) if (pts[i][k] !== undefined) return pts[i][k]; return null; };
    const span = pts.reduce((a, p) => a + p.seconds, 0);
    document.getElementById('window').textContent =
      `last ${span >= 120 ? Math.round(span / 60) + ' min' : Math.round(span) + ' s'}, one point per ${hist.interval_seconds} s`;
    const card = (title, now, chart) => h('section', {class: 'card chart-card'}, h('div', {class: 'chart-head'}, h('h2', {}, title), h('span', {class: 'big'}, now)), chart);
    fill(charts,
      card('Publish rate', `${num(last.publish_rate ?? 0)} events/s`,
        lineChart(times, [{label: 'events/s', values: pts.map((p) => p.publish_rate), cls: 'c1'}], {unit: '/s', id: 'chart-publish'})),
      card('Handler latency', `p50 ${ms(lastOf('p50_ms'))} · p99 ${ms(lastOf('p99_ms'))}`,
        lineChart(times, [{label: 'p50', values: pts.map((p) => p.p50_ms ?? null), cls: 'c1'}, {label: 'p99', values: pts.map((p) => p.p99_ms ?? null), cls: 'c2'}],
          {unit: 'ms', id: 'chart-latency'})),
      card('Errors', `${num(last.errors ?? 0)} failed attempts, ${num(last.dead_lettered ?? 0)} dead`,
        lineChart(times, [{label: 'failed attempts', values: pts.map((p) => p.errors), cls: 'c2'}, {label: 'dead-lettered', values: pts.map((p) => p.dead_lettered), cls: 'c3'}],
          {id: 'chart-errors'})),
      h('p', {class: 'muted small'}, 'Latency and errors are those of webhook deliveries (push subscriptions). ',
        h('span', {class: 'key c1'}, 'p50 / events'), ' ', h('span', {class: 'key c2'}, 'p99 / failed'), ' ', h('span', {class: 'key c3'}, 'dead-lettered')));
    fill(side, statusCard(st));
    return hist.interval_seconds;
  }
  const every = await load();
  const timer = setInterval(() => load().catch(() => {}), Math.max(2, Math.min(every, 10)) * 1000);
  addEventListener('pagehide', () => clearInterval(timer));
}

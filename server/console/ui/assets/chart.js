// SVG charts drawn with the DOM: a sparkline and a line chart with axes.
import {h} from './dom.js';

// sparkline draws values as a small line, the last value as a dot.
export function sparkline(values, {width = 120, height = 28} = {}) {
  const svg = h('svg:svg', {viewBox: `0 0 ${width} ${height}`, width, height, class: 'spark', role: 'img',
    'aria-label': `throughput, last ${values.length} intervals`});
  if (!values.length) return svg;
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  const pts = values.map((v, i) => [i * step, height - 2 - (v / max) * (height - 4)]);
  svg.append(h('svg:polyline', {points: pts.map((p) => p.join(',')).join(' '), class: 'spark-line'}));
  const [lx, ly] = pts[pts.length - 1];
  svg.append(h('svg:circle', {cx: lx, cy: ly, r: 2.2, class: 'spark-dot'}));
  return svg;
}

const nice = (v) => {
  if (v <= 0) return 0.25;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
};

// lineChart draws series [{label, values, cls}] over times (ms since the
// epoch), with a y axis in unit.
export function lineChart(times, series, {unit = '', width = 900, height = 210, id} = {}) {
  const L = 48, R = 10, T = 10, B = 24;
  const svg = h('svg:svg', {viewBox: `0 0 ${width} ${height}`, class: 'chart', id, role: 'img'});
  const all = series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined));
  const max = 4 * nice(Math.max(0, ...all) / 4);
  const n = times.length;
  const x = (i) => L + (n > 1 ? (i / (n - 1)) * (width - L - R) : (width - L - R) / 2);
  const y = (v) => T + (1 - v / max) * (height - T - B);
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    svg.append(h('svg:line', {x1: L, x2: width - R, y1: y(v), y2: y(v), class: 'grid'}),
      h('svg:text', {x: L - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end'}, fmt(v) + unit));
  }
  if (n) {
    const lab = (i) => {
      const d = new Date(times[i]);
      return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
    };
    svg.append(h('svg:text', {x: x(0), y: height - 6, class: 'axis', 'text-anchor': 'start'}, lab(0)),
      h('svg:text', {x: x(n - 1), y: height - 6, class: 'axis', 'text-anchor': 'end'}, lab(n - 1)));
  }
  for (const s of series) {
    let d = '';
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      d += (d && s.values[i - 1] !== null && s.values[i - 1] !== undefined ? 'L' : 'M') + x(i).toFixed(1) + ',' + y(v).toFixed(1);
    });
    if (d) svg.append(h('svg:path', {d, class: 'line ' + (s.cls || '')}, h('svg:title', {}, s.label)));
    // A value between two gaps is a dot.
    s.values.forEach((v, i) => {
      const gap = (j) => j < 0 || j >= n || s.values[j] === null || s.values[j] === undefined;
      if (v !== null && v !== undefined && gap(i - 1) && gap(i + 1)) svg.append(h('svg:circle', {cx: x(i), cy: y(v), r: 2.5, class: 'pt ' + (s.cls || '')}));
    });
  }
  if (!all.length) svg.append(h('svg:text', {x: width / 2, y: height / 2, class: 'axis', 'text-anchor': 'middle'}, 'no data yet'));
  return svg;
}

function fmt(v) {
  if (v >= 1000) return (v / 1000).toFixed(v >= 10000 ? 0 : 1) + 'k';
  if (v >= 10 || v === 0) return v.toFixed(0);
  return v.toFixed(v >= 1 ? 1 : 2);
}

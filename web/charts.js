/* charts.js: live metric charts (uPlot, loaded only when a chart is on
 * screen) and the anomaly heat map (a real <table>: its text alternative).
 * A chart fetches /v1/metrics/NAME for the last 15 minutes, then appends the
 * new points every 5 s (or every step, if longer) while it is shown. */
'use strict';

(function () {
  const { h, api, num, when } = window.ippoc;
  const WINDOW_S = 15 * 60;
  const POLL_MS = 5000;
  const MAX_SERIES = 8;
  const COLORS = ['#0b57d0', '#c5221f', '#146c2e', '#6b3fa0', '#b06000', '#00707a', '#a8326e', '#4d5358'];

  /* The uPlot script and stylesheet, added to <head> once, on first use. */
  let uplotPromise = null;
  function loadUPlot() {
    if (window.uPlot) return Promise.resolve(window.uPlot);
    if (uplotPromise) return uplotPromise;
    uplotPromise = new Promise((resolve, reject) => {
      document.head.append(h('link', { rel: 'stylesheet', href: '/assets/vendor/uPlot.min.css' }));
      const s = h('script', { src: '/assets/vendor/uPlot.iife.min.js' });
      s.addEventListener('load', () => (window.uPlot ? resolve(window.uPlot) : reject(new Error('uPlot did not load'))));
      s.addEventListener('error', () => { uplotPromise = null; reject(new Error('cannot load the chart library')); });
      document.head.append(s);
    });
    return uplotPromise;
  }

  function labelText(labels) {
    const parts = Object.entries(labels || {}).map(([k, v]) => `${k}=${v}`);
    return parts.length ? parts.join(', ') : '';
  }

  /* An axis label: as many decimals as the step between ticks needs. */
  function axisNum(v, unit, incr) {
    if (unit === 'percent') {
      const dec = incr > 0 ? Math.min(4, Math.max(0, -Math.floor(Math.log10(incr)))) : 1;
      return `${v.toFixed(dec)}%`;
    }
    return num(v, unit);
  }

  /* Aligned uPlot data from the API's series: [xs (s), ys...]. */
  function align(series, transform) {
    const xs = new Set();
    for (const s of series) for (const p of s.points) xs.add(p[0]);
    const x = [...xs].sort((a, b) => a - b);
    const at = new Map(x.map((t, i) => [t, i]));
    const ys = series.map((s) => {
      const y = new Array(x.length).fill(null);
      for (const p of s.points) y[at.get(p[0])] = p[1] === null ? null : transform ? transform(p[1]) : p[1];
      return y;
    });
    return [x.map((t) => t / 1000), ...ys];
  }

  /* A chart of metric NAME (a family or one key) in a new element.
   * opts: title, keys (room for a colour key under the plot), transform
   * (value -> value), label (of a single series), unit.
   * Returns {el, dispose}. el is [data-testid=chart] with data-metric and
   * data-points (the points plotted now, kept current). */
  function chart(name, opts) {
    opts = opts || {};
    const summary = h('p', { class: 'summary', 'aria-live': 'off' }, 'Loading…');
    const plot = h('div', { class: 'plot', 'aria-hidden': 'true' });
    const keys = h('ul', { class: 'keys', 'aria-hidden': 'true' });
    const el = h('figure', { class: opts.keys ? 'chart with-keys' : 'chart', 'data-testid': 'chart', 'data-metric': name, 'data-points': '0', role: 'img',
      'aria-label': `${opts.title || name}: loading` }, plot, opts.keys ? keys : null, summary);
    let u = null, series = [], data = null, stepMs = 1000, lastTs = 0, timer = 0, dead = false, ro = null, unit = opts.unit || '';

    function describe() {
      const n = data ? data[0].length : 0;
      el.dataset.points = String(n);
      if (!n) {
        summary.textContent = 'No data points in the last 15 minutes.';
        el.setAttribute('aria-label', `${opts.title || name}: no data in the last 15 minutes`);
        return;
      }
      const parts = series.map((s, i) => {
        const ys = data[i + 1].filter((v) => v !== null);
        if (!ys.length) return null;
        const last = ys[ys.length - 1];
        return `${s.label}: now ${num(last, unit)}, min ${num(Math.min(...ys), unit)}, max ${num(Math.max(...ys), unit)}`;
      }).filter(Boolean);
      const head = `${n} points over ${Math.round((data[0][n - 1] - data[0][0]) / 60)} min`;
      const more = summary.dataset.more ? ` (the first ${MAX_SERIES} of ${MAX_SERIES + Number(summary.dataset.more)} series are drawn)` : '';
      summary.textContent = series.length === 1 ? `${head}. ${parts.join('')}` : `${head}, ${series.length} series${more}.`;
      el.setAttribute('aria-label', `${opts.title || name}: ${head}. ${parts.join('; ')}${more}`);
    }

    async function first() {
      const doc = await api(`/v1/metrics/${encodeURIComponent(name)}?from=now-15m`);
      let list = doc.series || [];
      const total = list.length;
      list = list.slice(0, MAX_SERIES);
      stepMs = doc.step || 1000;
      unit = unit || (list[0] && list[0].unit) || '';
      series = list.map((s, i) => ({ key: s.key, label: opts.label || labelText(s.labels) || s.name, color: COLORS[i % COLORS.length] }));
      data = align(list, opts.transform);
      lastTs = data[0].length ? data[0][data[0].length - 1] * 1000 : Date.now() - WINDOW_S * 1000;
      if (total > MAX_SERIES) summary.dataset.more = `${total - MAX_SERIES}`;
      return total;
    }

    async function draw() {
      const uPlot = await loadUPlot();
      if (dead) return;
      const width = Math.max(plot.clientWidth, 200);
      u = new uPlot({
        width, height: 220,
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true } },
        axes: [{ stroke: '#4d5358', grid: { stroke: '#e3e6ea' }, space: 80 },
          { stroke: '#4d5358', grid: { stroke: '#e3e6ea' }, size: 64, values: (self, ticks, ax, space, incr) => ticks.map((v) => axisNum(v, unit, incr)) }],
        series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, spanGaps: true,
          value: (self, v) => num(v, unit) }))],
      }, data, plot);
      ro = new ResizeObserver(() => { if (u && plot.clientWidth) u.setSize({ width: plot.clientWidth, height: 220 }); });
      ro.observe(plot);
    }

    /* New points since the last one plotted; the window slides. */
    async function poll() {
      if (dead) return;
      try {
        const from = Math.floor(lastTs / 1000) + 1;
        const doc = await api(`/v1/metrics/${encodeURIComponent(name)}?from=${from}&to=now&step=${Math.max(1, Math.round(stepMs / 1000))}s`);
        if (dead) return;
        const bykey = new Map((doc.series || []).map((s) => [s.key, s]));
        const fresh = series.map((s) => ({ points: ((bykey.get(s.key) || {}).points || []).filter((p) => p[0] > lastTs) }));
        const add = align(fresh, opts.transform);
        if (add[0].length) {
          const cut = add[0][add[0].length - 1] - WINDOW_S;
          let drop = 0;
          while (drop < data[0].length && data[0][drop] < cut) drop++;
          data = data.map((col, i) => col.slice(drop).concat(add[i]));
          lastTs = add[0][add[0].length - 1] * 1000;
          if (u) u.setData(data);
          describe();
        }
      } catch (e) { /* the next poll tries again; the live indicator shows a lost daemon */ }
      if (!dead) timer = setTimeout(poll, Math.max(POLL_MS, stepMs));
    }

    const ready = (async () => {
      loadUPlot().catch(() => {}); /* fetched beside the data; draw() reports a failure */
      try {
        const total = await first();
        if (dead) return;
        describe();
        if (!total) return;
        if (series.length > 1) keys.replaceChildren(...series.map((s) => {
          const sw = h('span', { class: 'swatch' });
          sw.style.background = s.color; /* CSSOM, not a style attribute: the CSP allows it */
          return h('li', {}, sw, s.label);
        }));
        await draw();
        timer = setTimeout(poll, Math.max(POLL_MS, stepMs));
      } catch (e) {
        if (dead) return;
        plot.replaceWith(ippoc.errorBox(e, opts.title || name));
        summary.textContent = '';
        el.setAttribute('aria-label', `${opts.title || name}: ${e.message}`);
      }
    })();

    return {
      el, ready,
      dispose() {
        dead = true;
        clearTimeout(timer);
        if (ro) ro.disconnect();
        if (u) u.destroy();
      },
    };
  }

  /* ---- the anomaly heat map ---------------------------------------------------- */
  const BUCKETS = 15, BUCKET_MS = 2 * 60 * 1000, ROWS = 12;
  const seen = new Map(); /* key -> [[ts, score]]: scores this page saw while open */

  function level(score) {
    if (!(score > 0)) return 0;
    if (score >= 0.8) return 4;
    if (score >= 0.6) return 3;
    if (score >= 0.4) return 2;
    if (score >= 0.2) return 1;
    return 0;
  }

  /* From /v1/anomalies (without ?all=1: every watched series' score would
   * cost hundreds of KB): a table, one row per series anomalous now or in a
   * kept episode, one column per 2 minutes of the last half hour; a cell
   * is the highest score known in those 2 minutes. */
  function heatmap(doc) {
    const now = doc.ts || Date.now();
    const end = Math.floor(now / BUCKET_MS) * BUCKET_MS + BUCKET_MS;
    const start = end - BUCKETS * BUCKET_MS;
    const cells = new Map(); /* key -> array of max scores */
    const mark = (key, from, to, score) => {
      if (!cells.has(key)) cells.set(key, new Array(BUCKETS).fill(0));
      const r = cells.get(key);
      for (let b = 0; b < BUCKETS; b++) {
        const b0 = start + b * BUCKET_MS;
        if (b0 + BUCKET_MS > from && b0 <= to) r[b] = Math.max(r[b], score || 0);
      }
    };
    for (const a of doc.anomalies || []) {
      const hist = seen.get(a.key) || [];
      hist.push([now, a.score || 0]);
      while (hist.length && hist[0][0] < start) hist.shift();
      seen.set(a.key, hist);
      mark(a.key, a.since_ms, now, Math.max(a.peak || 0, a.score || 0));
    }
    for (const ep of doc.episodes || [])
      for (const m of ep.members || []) mark(m.key, m.since_ms, m.calm_ms || ep.closed_ms || now, m.peak);
    const keys = [...cells.keys()].filter((k) => cells.get(k).some((v) => v > 0)).slice(0, ROWS);
    for (const k of keys) for (const [ts, sc] of seen.get(k) || []) mark(k, ts, ts, sc);

    const hhmm = (t) => `${String(t.getHours()).padStart(2, '0')}:${String(t.getMinutes()).padStart(2, '0')}`;
    const caption = h('caption', { class: 'vh' }, `Anomaly score (0 to 1) of ${keys.length} series, one column per 2 minutes, ` +
      `from ${hhmm(new Date(start))} to ${hhmm(new Date(end))}`);
    const head = h('tr', {}, h('th', { scope: 'col' }, 'series'),
      Array.from({ length: BUCKETS }, (_, b) => {
        const t = new Date(start + b * BUCKET_MS);
        return h('th', { scope: 'col' }, b % 5 === 0 ? hhmm(t) : h('span', { class: 'vh' }, hhmm(t)));
      }));
    const body = keys.map((k) => h('tr', {}, h('th', { scope: 'row', title: k }, k),
      cells.get(k).map((sc, b) => h('td', { class: `l${level(sc)}`, title: `${k} at ${hhmm(new Date(start + b * BUCKET_MS))}: ${sc.toFixed(2)}` },
        h('span', { class: 'vh' }, sc.toFixed(2))))));
    const cols = h('colgroup', {}, h('col', { class: 'key' }), Array.from({ length: BUCKETS }, () => h('col', {})));
    const table = h('table', { class: 'heat' }, caption, cols, h('thead', {}, head), h('tbody', {}, body));
    const legend = h('ul', { class: 'legend', 'aria-label': 'Colour key' },
      [['l0', 'under 0.2'], ['l1', '0.2'], ['l2', '0.4'], ['l3', '0.6'], ['l4', '0.8 and up (anomalous)']]
        .map(([c, t]) => h('li', {}, h('span', { class: c }), t)));
    const anomalous = (doc.anomalies || []).length;
    const more = cells.size > keys.length ? ` The ${ROWS} first of ${cells.size} series are shown.` : '';
    return h('div', { 'data-testid': 'heatmap', 'data-series': String(keys.length), class: 'scroll' },
      h('p', { class: 'muted' }, `${anomalous} anomalous now of ${doc.watched || 0} watched series (threshold ${doc.threshold}); ` +
        `${doc.episodes_total || 0} episodes so far.${more}`),
      keys.length ? table : h('p', { class: 'empty' }, 'No series was anomalous in the last 30 minutes.'), keys.length ? legend : null);
  }

  ippoc.chart = chart;
  ippoc.heatmap = heatmap;
  ippoc.when = when;
})();

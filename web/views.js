/* views.js: the dashboard's views, one function per hash route; each fills
 * its box from the API and returns {refresh, dispose} for live updates
 * (app.js calls refresh on heal.*, incident.*, anomaly and service events). */
'use strict';

(function () {
  const { h, api, when, dur, num, badge, views, errorBox } = window.ippoc;

  const card = (title, ...kids) => h('section', { class: 'card', 'aria-label': title }, h('h3', {}, title), ...kids);
  const empty = (text) => h('p', { class: 'empty' }, text);
  /* cols: header names ("~name": hidden on a phone); stack: on a phone each
   * row becomes a block whose cells carry their column's name. */
  const table = (cols, rows, stack) => {
    const names = cols.map((c) => c.replace(/^~/, ''));
    for (const tr of rows) [...tr.children].forEach((cell, i) => { cell.dataset.label = names[i] || ''; });
    return h('div', { class: 'scroll' }, h('table', { class: stack ? 'stack' : null },
      h('thead', {}, h('tr', {}, cols.map((c, i) => h('th', { scope: 'col', class: c.startsWith('~') ? 'hide-sm' : null }, names[i])))),
      h('tbody', {}, rows)));
  };
  const td = (x, sm) => h('td', { class: sm ? 'hide-sm' : null }, x);
  const incLink = (id) => h('a', { href: `#/incidents/${id}` }, `#${id}`);
  const isOpen = (inc) => !inc.closed_ms && !/^(resolved|failed|closed)$/.test(inc.state || '');

  /* Replaces el's children with what fn builds, or with the error. */
  async function fill(el, fn, what) {
    try {
      const kids = await fn();
      el.replaceChildren(...[].concat(kids));
    } catch (e) {
      if (e instanceof ippoc.ApiError && e.status === 401) throw e;
      el.replaceChildren(errorBox(e, what));
    }
  }

  /* ---- overview ---------------------------------------------------------------- */
  function serviceRows(doc) {
    const list = doc.services || [];
    if (!list.length) return empty('No services are configured (add [service.NAME] sections).');
    return table(['service', 'state', '~pid', 'restarts', '~CPU', '~memory', '~mode'], list.map((s) =>
      h('tr', { 'data-testid': 'service-row', 'data-name': s.name, 'data-state': s.state },
        h('th', { scope: 'row' }, s.name), td(h('span', {}, badge(s.state), s.flapping ? ' ' : '', s.flapping ? badge('flapping') : '')),
        td(s.pid || '-', true), td(s.restarts), td(num(s.cpu_percent, 'percent'), true), td(num(s.rss_bytes, 'bytes'), true),
        td(s.mode || '-', true))));
  }

  function incidentRows(list) {
    return table(['incident', 'service', 'state', 'what', '~detected'], list.map((i) =>
      h('tr', { 'data-testid': 'incident-row', 'data-id': i.id, 'data-state': i.state },
        h('th', { scope: 'row' }, incLink(i.id)), td(i.service || '-'), td(badge(i.state)), td(i.what || '-'), td(when(i.detected_ms), true))));
  }

  views.overview = async (box) => {
    /* .reserve: room for a few rows before the data comes (no layout shift) */
    const svc = h('div', { 'data-testid': 'services', class: 'reserve' }, empty('Loading…'));
    const inc = h('div', { 'data-testid': 'incidents-open', class: 'reserve' }, empty('Loading…'));
    const heat = h('div', {}, h('div', { 'data-testid': 'heatmap', 'data-series': '0' }, empty('Loading…')));
    const head = h('p', { class: 'muted' }, ' ');
    /* one series, not the family: the first view stays small */
    const cpu = ippoc.chart('cpu.usage_percent{cpu="total",state="idle"}', { title: 'CPU busy (all CPUs)',
      transform: (v) => Math.max(0, 100 - v), label: 'busy', unit: 'percent' });
    const mem = ippoc.chart('memory.used_percent', { title: 'Memory used', unit: 'percent', label: 'used' });
    box.append(h('h2', {}, 'Overview'), head,
      h('div', { class: 'grid' },
        card('Services', svc), card('Open incidents', inc),
        h('section', { class: 'card', 'aria-label': 'CPU busy' }, h('h3', {}, h('a', { href: '#/metrics/cpu.usage_percent' }, 'CPU busy')), cpu.el),
        h('section', { class: 'card', 'aria-label': 'Memory used' }, h('h3', {}, h('a', { href: '#/metrics/memory.used_percent' }, 'Memory used')), mem.el),
        h('section', { class: 'card wide', 'aria-label': 'Anomaly heat map' }, h('h3', {}, 'Anomaly heat map'), heat)));

    /* types: the event types that asked for it (none: everything) */
    async function refresh(types) {
      const any = (re) => !types || [...types].some((t) => re.test(t));
      await Promise.all([
        !types && fill(head, async () => {
          const st = ippoc.bootStatus || (await api('/v1/status'));
          ippoc.bootStatus = null;
          return `${st.name || 'ippocd'} ${st.version || ''} on ${st.host || '?'}, up ${dur((st.uptime_s || 0) * 1000)}`;
        }, 'status'),
        any(/^(service|heal|incident|alert|brain)/) && fill(svc, async () => serviceRows(await api('/v1/services')), 'services'),
        any(/^(incident|heal|brain)/) && fill(inc, async () => {
          const [incs, pend] = await Promise.all([api('/v1/incidents'), api('/v1/pending')]);
          const open = (incs.incidents || []).filter(isOpen);
          /* a suggested fix closes its incident at once: its action waits in the queue */
          const waiting = pend.pending || [];
          const one = waiting.length === 1;
          const note = waiting.length ? h('p', { 'data-testid': 'awaiting' },
            `${waiting.length} action${one ? '' : 's'} await${one ? 's' : ''} approval (`,
            waiting.map((p) => `${p.service}: ${p.action}`).join(', '), '): ', h('a', { href: '#/pending' }, 'review')) : null;
          return [note, open.length ? incidentRows(open) : empty('No open incidents.')].filter(Boolean);
        }, 'incidents'),
        any(/^anomaly/) && fill(heat, async () => {
          const doc = await api('/v1/anomalies');
          if (!doc.enabled) return h('div', { 'data-testid': 'heatmap', 'data-series': '0' }, empty('Anomaly detection is off ([detect] enabled = no).'));
          return ippoc.heatmap(doc);
        }, 'anomalies'),
      ]);
    }
    await refresh();
    /* the heat map's columns move on with time, not only with events */
    const timer = setInterval(() => refresh(), 30000);
    return { refresh, dispose() { clearInterval(timer); cpu.dispose(); mem.dispose(); } };
  };

  /* ---- incidents ----------------------------------------------------------------- */
  views.incidents = async (box) => {
    const list = h('div', {});
    box.append(h('h2', {}, 'Incidents'), h('p', { class: 'muted' }, 'Open and recent incidents, newest first.'), list);
    async function refresh() {
      await fill(list, async () => {
        const all = ((await api('/v1/incidents')).incidents || []).slice().sort((a, b) => (b.id || 0) - (a.id || 0));
        if (!all.length) return empty('No incidents yet.');
        return table(['incident', 'service', 'state', 'what', '~detected', '~time to heal'], all.map((i) =>
          h('tr', { 'data-testid': 'incident-row', 'data-id': i.id, 'data-state': i.state },
            h('th', { scope: 'row' }, incLink(i.id)), td(i.service || '-'), td(badge(i.state)), td(i.what || '-'),
            td(when(i.detected_ms), true), td(i.time_to_heal_ms !== undefined && i.closed_ms ? dur(i.time_to_heal_ms) : '-', true))), true);
      }, 'incidents');
    }
    await refresh();
    return { refresh };
  };

  /* The timeline's entries of an incident (and its diagnosis), by time. */
  function timelineItems(inc, diag) {
    const items = [];
    const add = (kind, ts, title, ...more) => items.push({ kind, ts: ts || 0, title, more });
    add('signal', inc.failing_since_ms, `Failing: ${inc.what || '?'}`, inc.where ? `noticed by ${inc.where}` : '');
    const sig = inc.signature || {};
    for (const x of sig.exits || []) add('signal', x.ts, `Process ${x.pid} exited`, x.signal ? `signal ${x.signal}` : `code ${x.code}`, x.uptime_ms ? ` after ${dur(x.uptime_ms)}` : '');
    for (const x of sig.probes || []) add('signal', x.ts, `Probe ${x.probe || ''} ${x.ok === false ? 'failed' : 'answered'}`, x.message || '');
    for (const x of sig.anomalies || []) add('signal', x.since_ms || x.ts, `Anomaly: ${x.key || x.metric || ''}`, x.summary || x.reason || '');
    for (const x of sig.logs || []) add('signal', x.ts || x.first_ms, `Log: ${x.template || x.text || ''}`, x.count ? `${x.count} lines` : '');
    for (const x of (sig.kernel || []).filter((k) => k.service)) add('signal', x.ts, `Kernel: ${x.kind}`, x.text || '');
    if (inc.detected_ms) add('signal', inc.detected_ms, 'Incident opened', inc.time_to_detect_ms !== undefined ? `detected in ${dur(inc.time_to_detect_ms)}` : '');
    const ev = inc.evidence;
    if (ev && Object.keys(ev).length) add('evidence', inc.detected_ms, 'Evidence at detection', evidenceBlock(ev));
    if (diag) {
      add('diagnosis', diag.ts, `Diagnosis: ${diag.fault_type || '?'}${diag.component ? ` in ${diag.component}` : ''}`,
        `${diag.root_cause || ''} (confidence ${diag.confidence ?? '?'}, from ${diag.source || '?'})`,
        (diag.evidence || []).length ? h('ul', {}, diag.evidence.map((e) => h('li', {}, `${e.kind}: ${e.text}`))) : '',
        (diag.proposed_actions || []).length ? h('p', {}, 'Proposed: ', diag.proposed_actions.map((a) => `${a.action}${a.service ? ` ${a.service}` : ''} (${a.why || ''})`).join('; ')) : '');
    }
    for (const a of inc.actions || [])
      add('action', a.ts, `Action: ${a.action}`, badge(a.outcome), ` ${a.message || ''}`, a.by ? ` (by ${a.by})` : '');
    if (inc.closed_ms || !isOpen(inc))
      add('outcome', inc.closed_ms, `Outcome: ${inc.state}`, inc.reason || '', inc.time_to_heal_ms !== undefined && inc.state === 'resolved' ? ` - time to heal ${dur(inc.time_to_heal_ms)}` : '');
    items.sort((a, b) => a.ts - b.ts);
    return items.map((it) => h('li', { 'data-kind': it.kind },
      h('span', { class: 'kind' }, it.kind), ' ', when(it.ts), ' - ', h('strong', {}, it.title), it.more.length ? h('div', {}, it.more) : ''));
  }

  function evidenceBlock(ev) {
    const rows = [];
    for (const [k, v] of Object.entries(ev)) {
      if (k === 'log' || k === 'probes') continue;
      const unit = /bytes/.test(k) ? 'bytes' : /percent/.test(k) ? 'percent' : '';
      const val = v && typeof v === 'object' ? JSON.stringify(v) : typeof v === 'number' && unit ? num(v, unit) : String(v);
      rows.push(h('dt', {}, k.replace(/_/g, ' ')), h('dd', {}, k === 'for_incident' ? incLink(v) : val));
    }
    return [h('dl', { class: 'kv' }, rows),
      (ev.probes || []).length ? h('ul', {}, ev.probes.map((p) => h('li', {}, `probe ${p.probe}: ${p.ok ? 'ok' : 'failed'} ${p.message || ''}`))) : '',
      ev.log ? h('details', {}, h('summary', {}, 'Service log (last lines)'), h('pre', {}, ev.log)) : ''];
  }

  /* Past incidents like this one: the diagnosis's remembered cases, an
   * incident's own "similar" list, and the incident its evidence names. */
  function similarLinks(inc, diag) {
    const seen = new Map();
    const add = (id, text) => { if (id && id !== inc.id && !seen.has(id)) seen.set(id, text); };
    for (const c of (diag && diag.cases) || [])
      add(c.incident, `#${c.incident}: ${c.fault_type || ''} in ${c.component || '?'} (similarity ${(+c.similarity).toFixed(2)}${c.fixed_by && c.fixed_by.length ? `, fixed by ${c.fixed_by.join(', ')}` : ''})`);
    for (const s of inc.similar || []) add(typeof s === 'object' ? s.incident || s.id : s, typeof s === 'object' ? `#${s.incident || s.id}: ${s.what || s.summary || ''}` : `#${s}`);
    if (inc.evidence && inc.evidence.for_incident) add(inc.evidence.for_incident, `#${inc.evidence.for_incident}: the incident this one follows up`);
    return [...seen.entries()].map(([id, text]) => h('li', {}, h('a', { href: `#/incidents/${id}` }, text)));
  }

  views.incident = async (box, ctx, id) => {
    id = Number(id);
    async function build() {
      const [inc, list] = await Promise.all([api(`/v1/incidents/${id}`), api('/v1/incidents').catch(() => ({ incidents: [] }))]);
      /* the diagnosis: the incident's own, or the one a brain incident holds for it (no 404 round trip) */
      let diag = inc.diagnosis && inc.diagnosis.incident === id ? inc.diagnosis : null;
      for (const o of list.incidents || []) if (!diag && o.diagnosis && o.diagnosis.incident === id) diag = o.diagnosis;
      if (!diag && inc.diagnosis) diag = inc.diagnosis;
      const sim = similarLinks(inc, diag);
      return [h('h2', {}, `Incident #${inc.id}`),
        h('div', { 'data-testid': 'incident', 'data-id': inc.id, 'data-state': inc.state, class: 'card' },
          h('dl', { class: 'kv' },
            h('dt', {}, 'service'), h('dd', {}, inc.service || '-'), h('dt', {}, 'state'), h('dd', {}, badge(inc.state)),
            h('dt', {}, 'what'), h('dd', {}, inc.what || '-'), h('dt', {}, 'detected'), h('dd', {}, when(inc.detected_ms, { date: true })),
            h('dt', {}, 'why'), h('dd', {}, inc.why || inc.reason || '-'))),
        card('Timeline', h('ol', { class: 'timeline', 'data-testid': 'timeline' }, timelineItems(inc, diag))),
        card('Similar past incidents', h('ul', { 'data-testid': 'similar' }, sim.length ? sim : h('li', { class: 'empty' }, 'None remembered.'))),
        h('p', {}, h('a', { href: '#/incidents' }, 'All incidents'))];
    }
    box.append(...(await build()));
    return {
      async refresh() {
        try { box.replaceChildren(...(await build())); } catch (e) { /* keep what is shown */ }
      },
    };
  };

  /* ---- metrics ----------------------------------------------------------------------- */
  views.metrics = async (box) => {
    const doc = await api('/v1/metrics');
    const fams = new Map();
    for (const m of doc.metrics || []) {
      const f = fams.get(m.name) || { n: 0, help: m.help, unit: m.unit };
      f.n++;
      fams.set(m.name, f);
    }
    const names = [...fams.keys()].sort();
    box.append(h('h2', {}, 'Metrics'),
      h('p', { class: 'muted' }, `${doc.count ?? (doc.metrics || []).length} series in ${names.length} families. Pick one to chart it live.`),
      h('ul', { class: 'metric-list', 'data-testid': 'metric-list' }, names.map((n) =>
        h('li', {}, h('a', { href: `#/metrics/${encodeURIComponent(n)}`, title: fams.get(n).help || '' }, n),
          fams.get(n).n > 1 ? h('span', { class: 'muted' }, ` (${fams.get(n).n})`) : ''))));
  };

  views.metric = async (box, ctx, name) => {
    const c = ippoc.chart(name, { title: name, keys: !name.includes('{') });
    let info = null;
    try {
      const fam = name.includes('{') ? name.slice(0, name.indexOf('{')) : name;
      info = await api(`/v1/metrics?match=${encodeURIComponent(fam)}`);
    } catch (e) {
      if (e.status === 401) throw e;
    }
    const series = (info && info.metrics) || [];
    box.append(h('h2', {}, name), h('p', { class: 'muted' }, (series[0] && series[0].help) || '', series[0] ? ` (${[series[0].unit, series[0].kind].filter(Boolean).join(', ')})` : ''),
      h('section', { class: 'card', 'aria-label': 'Chart' }, h('h3', {}, 'Last 15 minutes, live'), c.el));
    if (series.length > 1)
      box.append(card('Series', h('ul', {}, series.map((s) => h('li', {},
        h('a', { href: `#/metrics/${encodeURIComponent(s.key)}` }, s.key), ` = ${num(s.last, s.unit)}`)))));
    box.append(h('p', {}, h('a', { href: '#/metrics' }, 'All metrics')));
    return { dispose: () => c.dispose() };
  };

  /* ---- pending actions ----------------------------------------------------------------- */
  views.pending = async (box) => {
    const list = h('div', {});
    box.append(h('h2', {}, 'Pending actions'), h('p', { class: 'muted' },
      'Actions the heal policy queued for approval (services in mode suggest). Approving runs the action through the same policy and audit log.'), list);
    const busy = new Set();

    async function waitGone(id) {
      const deadline = Date.now() + 15000;
      while (Date.now() < deadline) {
        const doc = await api('/v1/pending');
        if (!(doc.pending || []).some((p) => p.id === id)) return true;
        await new Promise((r) => setTimeout(r, 300));
      }
      return false;
    }

    async function act(p, verb, row) {
      busy.add(p.id);
      for (const b of row.querySelectorAll('button')) b.disabled = true;
      try {
        const r = await api(`/v1/pending/${p.id}/${verb}`, { body: { who: 'dashboard' } });
        ippoc.notice(`#${p.id} ${p.action} on ${p.service}: ${r.result || verb}${r.message ? ` - ${r.message}` : ''}`);
        if (await waitGone(p.id)) row.remove();
        await refresh();
      } catch (e) {
        ippoc.notice(`#${p.id}: ${verb} failed: ${e.message}`);
        for (const b of row.querySelectorAll('button')) b.disabled = false;
      } finally {
        busy.delete(p.id);
      }
    }

    async function refresh() {
      if (busy.size) return;
      await fill(list, async () => {
        const items = (await api('/v1/pending')).pending || [];
        if (!items.length) return empty('Nothing is waiting for approval.');
        return table(['id', 'service', 'action', 'why', '~expires in', 'decide'], items.map((p) => {
          const row = h('tr', { 'data-testid': 'pending-row', 'data-id': p.id });
          row.append(h('th', { scope: 'row' }, `#${p.id}`), td(p.service), td(h('code', {}, p.action)), td(p.why || '-'),
            td(dur(p.expires_in_ms), true),
            td(h('div', { class: 'actions' },
              h('button', { type: 'button', 'data-testid': 'approve', 'aria-label': `Approve #${p.id}: ${p.action} on ${p.service}`, onclick: () => act(p, 'approve', row) }, 'Approve'),
              h('button', { type: 'button', class: 'danger', 'data-testid': 'reject', 'aria-label': `Reject #${p.id}: ${p.action} on ${p.service}`, onclick: () => act(p, 'reject', row) }, 'Reject'))));
          return row;
        }), true);
      }, 'pending actions');
    }
    await refresh();
    return { refresh };
  };

  /* ---- audit log ---------------------------------------------------------------------------- */
  views.audit = async (box) => {
    const ver = h('div', {}), rows = h('div', {});
    box.append(h('h2', {}, 'Audit log'), h('p', { class: 'muted' }, 'Every action the heal policy decided, ran or refused, hash-chained.'),
      card('Verification', ver), card('Latest records', rows));
    async function refresh() {
      await Promise.all([
        fill(ver, async () => {
          const v = await api('/v1/audit/verify');
          return h('div', { 'data-testid': 'audit-verify', 'data-ok': String(!!v.ok) },
            h('p', {}, badge(v.ok ? 'intact' : 'TAMPERED'), ' ', v.ok ?
              `The chain of ${v.records} records verifies (last #${v.last_seq}).` :
              `Broken at line ${v.line} (record #${v.seq}): ${v.reason || v.status}.`),
            v.last_hash ? h('p', { class: 'muted mono' }, `last hash ${v.last_hash}`) : '');
        }, 'verification'),
        fill(rows, async () => {
          const recs = ((await api('/v1/audit?last=200')).records || []).slice().reverse();
          if (!recs.length) return empty('The audit log is empty.');
          return table(['seq', 'time', 'kind', 'service', 'action', 'verdict / outcome', '~reason'], recs.map((r) =>
            h('tr', { 'data-testid': 'audit-row', 'data-seq': r.seq },
              h('th', { scope: 'row' }, r.seq), td(when(r.ts)), td(r.kind), td(r.service || '-'),
              td(h('code', {}, (r.action && (r.action.text || r.action.kind)) || '-')),
              td(r.outcome ? h('span', {}, badge(r.outcome.status), ` ${r.outcome.message || ''}`) : badge(r.verdict || '-')),
              td(r.detail || r.reason || '', true))), true);
        }, 'audit records'),
      ]);
    }
    await refresh();
    return { refresh };
  };

  /* ---- genome and experiments ----------------------------------------------------------------- */
  /* A run's incumbent: {values: {knob: value}, median, trial}. */
  function incumbent(inc) {
    if (!inc || typeof inc !== 'object') return '-';
    const vals = Object.entries(inc.values || {}).map(([k, v]) => `${k}=${v}`).join(', ');
    return [inc.median !== undefined ? `median ${num(inc.median)}` : '', inc.trial !== undefined ? `trial ${inc.trial}` : '', vals]
      .filter(Boolean).join('; ') || '-';
  }

  views.genome = async (box) => {
    const commits = h('div', {}), runs = h('div', {});
    box.append(h('h2', {}, 'Genome'), h('p', { class: 'muted' }, 'The cell\'s configuration history (a git repository) and its experiments.'),
      card('Experiments', runs), card('History', commits));
    async function refresh() {
      await Promise.all([
        fill(runs, async () => {
          const list = (await api('/v1/evolve')).runs || [];
          if (!list.length) return empty('No experiment has run.');
          return table(['run', 'status', 'space', 'started', '~trials', '~accepted', '~best so far'], list.map((r) =>
            h('tr', { 'data-testid': 'evolve-run', 'data-id': r.id, 'data-state': r.status },
              h('th', { scope: 'row' }, h('code', {}, r.id)), td(badge(r.status)), td(r.space || '-'),
              td(when(r.started_ms)), td(r.trials ?? '-', true), td(r.accepted ?? '-', true),
              td(r.error ? r.error : incumbent(r.incumbent), true))), true);
        }, 'experiments'),
        fill(commits, async () => {
          const list = (await api('/v1/genome')).commits || [];
          if (!list.length) return empty('The genome has no commits yet.');
          return table(['commit', 'time', 'kind', 'author', 'summary', '~fitness'], list.map((c) =>
            h('tr', { 'data-testid': 'genome-commit', 'data-id': c.id },
              h('th', { scope: 'row' }, h('code', { title: c.id }, c.short || String(c.id).slice(0, 8))), td(when((c.time || 0) * 1000, { date: true })),
              td(c.kind || '-'), td(c.author || '-'), td(c.summary || c.reason || '-'), td(c.fitness && typeof c.fitness === 'object' ? JSON.stringify(c.fitness) : c.fitness ?? '-', true))), true);
        }, 'genome'),
      ]);
    }
    await refresh();
    return { refresh };
  };

  /* ---- mesh ---------------------------------------------------------------------------------- */
  views.mesh = async (box) => {
    const body = h('div', { 'data-testid': 'mesh' });
    box.append(h('h2', {}, 'Mesh'), body);
    try {
      const m = await api('/v1/mesh/status');
      if (!m.joined) {
        body.append(h('p', {}, m.enabled ? `This cell has not joined a fleet${m.reason ? `: ${m.reason}` : ''}.` : 'The mesh is off on this cell ([mesh] enabled = no).'));
        return;
      }
      const [pr, wr] = await Promise.all([api('/v1/mesh/peers'), api('/v1/mesh/wisdom?limit=20')]);
      const peers = (pr.peers || []).filter((p) => !p.self);
      const mm = m.members || {};
      body.append(h('p', {}, `This cell is ${m.node_id} (${(m.roles || []).join(', ') || 'no role'}) on ${m.listen}; ` +
        `${mm.alive ?? 0} alive, ${mm.suspect ?? 0} suspect, ${mm.dead ?? 0} dead.`),
        peers.length ? table(['peer', 'state', 'roles', 'trust', 'address'], peers.map((p) =>
          h('tr', { 'data-testid': 'mesh-peer' }, h('th', { scope: 'row' }, p.node_id), td(p.state),
            td((p.roles || []).join(', ') || '-'), td(p.trust ?? '-'), td(p.addr)))) : empty('No peers yet.'),
        h('h3', {}, 'Recent wisdom'),
        (wr.records || []).length ? h('ul', {}, wr.records.map((w) => h('li', {}, when(w.received * 1000), ' ', `${w.from}: ${w.summary}`))) : empty('Nothing shared yet.'));
    } catch (e) {
      if (e.status === 401) throw e;
      if (e.status === 404 || e.status === 503) body.append(h('p', {}, 'The mesh is not running on this cell.'));
      else body.append(errorBox(e, 'mesh'));
    }
  };

  /* ---- ask ------------------------------------------------------------------------------------- */
  views.ask = async (box) => {
    const q = h('textarea', { id: 'question', name: 'question', required: true, rows: 3, maxlength: 2000,
      placeholder: 'why did web restart at 03:47?' });
    const answer = h('div', { 'data-testid': 'answer', 'aria-live': 'polite' });
    const btn = h('button', { type: 'submit' }, 'Ask');
    const form = h('form', { 'data-testid': 'ask-form', class: 'card' },
      h('div', { class: 'row' }, h('label', { for: 'question' }, 'Ask this cell about its past'), q), btn);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const question = q.value.trim();
      if (!question) return;
      btn.disabled = true;
      answer.setAttribute('aria-busy', 'true');
      answer.replaceChildren(h('p', { class: 'muted' }, 'Thinking…'));
      try {
        const r = await api('/v1/ask', { body: { question }, timeoutMs: 180000 }); /* a model may take a while */
        answer.replaceChildren(h('section', { class: 'card', 'aria-label': 'Answer' }, h('h3', {}, 'Answer'),
          h('p', { class: 'answer' }, r.answer || '(no answer)'),
          (r.records || []).length ? h('div', {}, h('h3', {}, 'From these records'), h('ul', {}, r.records.map((x) =>
            h('li', {}, h('code', {}, x.ref), ' ', when(x.ts), ' ', x.type === 'incident' ? h('a', { href: `#/incidents/${x.id}` }, x.summary) : x.summary)))) : '',
          h('p', { class: 'muted' }, r.model && typeof r.model === 'object' ? (r.model.absent || r.model.name || r.model.model || '') : r.model || '')));
      } catch (e) {
        if (e.status !== 401) answer.replaceChildren(errorBox(e, 'ask'));
      } finally {
        btn.disabled = false;
        answer.removeAttribute('aria-busy');
      }
    });
    box.append(h('h2', {}, 'Ask'), form, answer);
    return { mounted: () => q.focus() };
  };
})();

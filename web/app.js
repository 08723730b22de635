/* app.js: the dashboard's core: the API client (bearer token from
 * sessionStorage, never in a URL), the token form on 401, hash routing,
 * the live event stream (fetch + ReadableStream: EventSource cannot send the
 * Authorization header) and small DOM helpers. The views are in views.js,
 * the charts and the heat map in charts.js. Plain JavaScript, no build step. */
'use strict';

const TOKEN_KEY = 'ippoc-token';
const ippoc = (window.ippoc = { views: {}, view: null });

/* ---- DOM helpers ------------------------------------------------------------ */
/* h('a', {href: '#/', class: 'x', dataset: {id: 1}, onclick: fn}, 'text', child...) */
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}
ippoc.h = h;

function pad(n) { return String(n).padStart(2, '0'); }

/* A <time> in the viewer's local time, with ISO 8601 (UTC) in its title. */
function when(ms, opts) {
  if (ms === null || ms === undefined || !(ms > 0)) return h('span', { class: 'muted' }, '-');
  const d = new Date(ms);
  const today = new Date().toDateString() === d.toDateString();
  const local = (today && !(opts && opts.date) ? '' : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} `) +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return h('time', { datetime: d.toISOString(), title: d.toISOString() }, local);
}
ippoc.when = when;

function dur(ms) {
  if (ms === null || ms === undefined || isNaN(ms)) return '-';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(Math.round(s % 60))}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}
ippoc.dur = dur;

/* 1234567 -> "1.2M"; unit-aware for bytes and percent. */
function num(v, unit) {
  if (v === null || v === undefined || isNaN(v)) return '-';
  if (unit === 'percent') return `${(+v).toFixed(1)} %`;
  const a = Math.abs(v), k = unit === 'bytes' ? 1024 : 1000;
  const sfx = unit === 'bytes' ? ['B', 'KiB', 'MiB', 'GiB', 'TiB'] : ['', 'k', 'M', 'G', 'T'];
  let i = 0, x = a;
  while (x >= k && i < sfx.length - 1) { x /= k; i++; }
  const s = (x >= 100 || Number.isInteger(x) ? x.toFixed(0) : x.toFixed(x >= 10 ? 1 : 2)) + (unit === 'bytes' ? ' ' : '') + sfx[i];
  return (v < 0 ? '-' : '') + s + (unit && unit !== 'bytes' && unit !== 'percent' && unit !== '1' ? ` ${unit}` : '');
}
ippoc.num = num;

/* The badge class of a state word. */
function stateClass(s) {
  s = String(s || '').toLowerCase();
  if (/^(running|resolved|ok|healed|done|approved|execute|finished|accepted|connected|true|intact)$/.test(s)) return 'badge ok';
  if (/(fail|crash|dead|error|refus|tamper|reject|false|flap|stopped|broken)/.test(s)) return 'badge bad';
  if (/(open|acting|pending|queue|start|backoff|verif|suggest|running_)/.test(s)) return 'badge warn';
  return 'badge';
}
ippoc.badge = (s) => h('span', { class: stateClass(s) }, s === undefined || s === null || s === '' ? '-' : String(s));

/* ---- notices (the [role=status] live region) --------------------------------- */
let noticeTimer = 0;
ippoc.notice = function (text) {
  const el = document.querySelector('[data-testid=notice]');
  el.textContent = text;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { el.textContent = ''; }, 8000);
};

/* ---- the API client ------------------------------------------------------------ */
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}
ippoc.ApiError = ApiError;

function token() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
}
function authHeaders(extra) {
  const hd = Object.assign({ Accept: 'application/json' }, extra || {});
  const t = token();
  if (t) hd.Authorization = `Bearer ${t}`;
  return hd;
}

/* GET (or POST with body) a /v1 path; the answer's JSON, or an ApiError
 * carrying the API's error.message (or saying it did not answer within
 * opts.timeoutMs, 15 s by default). A 401 also brings up the token form. */
async function api(path, opts) {
  opts = opts || {};
  const init = { headers: authHeaders(), cache: 'no-store' };
  if (opts.body !== undefined) {
    init.method = 'POST';
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(opts.body);
  }
  const ms = opts.timeoutMs || 15000;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), ms);
  init.signal = ctl.signal;
  let r, text;
  try {
    r = await fetch(path, init);
    text = await r.text();
  } catch (e) {
    throw ctl.signal.aborted ? new ApiError(0, 'timeout', `ippocd did not answer ${path} within ${ms / 1000} s`)
      : new ApiError(0, 'network', `cannot reach ippocd (${e.message})`);
  } finally {
    clearTimeout(timer);
  }
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch (e) { doc = null; }
  if (!r.ok) {
    const err = doc && doc.error;
    const msg = err && typeof err === 'object' ? err.message : typeof err === 'string' ? err : `HTTP ${r.status}`;
    const e = new ApiError(r.status, err && err.code ? err.code : `http_${r.status}`, msg || `HTTP ${r.status}`);
    if (r.status === 401 && !opts.quiet401) needToken();
    throw e;
  }
  if (doc === null) throw new ApiError(r.status, 'bad_answer', `${path}: the answer is not JSON`);
  return doc;
}
ippoc.api = api;

/* ---- the token form ------------------------------------------------------------------ */
let tokenShown = false;
function needToken() {
  if (tokenShown) return;
  tokenShown = true;
  stopStream();
  const main = document.getElementById('view');
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { 'data-testid': 'token-form', class: 'card', 'aria-labelledby': 'token-title' },
    h('h2', { id: 'token-title' }, 'API token needed'),
    h('p', {}, 'This cell asks for its API token (the ', h('code', {}, '[api] token'), ' of its configuration). ' +
      'It is kept in this tab only (sessionStorage) and sent as an Authorization header, never in a URL.'),
    h('div', { class: 'row' }, h('label', { for: 'token' }, 'API token'), input),
    h('button', { type: 'submit' }, 'Use this token'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    try { sessionStorage.setItem(TOKEN_KEY, input.value.trim()); } catch (e) { /* private mode: kept for nothing */ }
    tokenShown = false;
    boot();
  });
  disposeView();
  main.replaceChildren(form);
  input.focus();
}

/* ---- views and routing ------------------------------------------------------------------- */
const ROUTES = [
  [/^\/?$/, 'overview'],
  [/^\/incidents\/?$/, 'incidents'],
  [/^\/incidents\/(\d+)$/, 'incident'],
  [/^\/metrics\/?$/, 'metrics'],
  [/^\/metrics\/(.+)$/, 'metric'],
  [/^\/pending\/?$/, 'pending'],
  [/^\/audit\/?$/, 'audit'],
  [/^\/genome\/?$/, 'genome'],
  [/^\/mesh\/?$/, 'mesh'],
  [/^\/ask\/?$/, 'ask'],
];

function disposeView() {
  const v = ippoc.view;
  ippoc.view = null;
  clearTimeout(refreshTimer);
  refreshTimer = 0;
  pendingTypes = new Set();
  if (v && v.dispose) {
    try { v.dispose(); } catch (e) { /* a view's cleanup never stops the next one */ }
  }
}

/* An error box with the API's message: a view is never left blank. */
function errorBox(e, what) {
  return h('div', { class: 'error', role: 'alert', 'data-testid': 'error' },
    h('strong', {}, what ? `${what}: ` : 'Error: '), e && e.message ? e.message : String(e));
}
ippoc.errorBox = errorBox;

let routeGen = 0;
async function route() {
  const gen = ++routeGen;
  const path = decodeURIComponent((location.hash || '#/').slice(1)).replace(/^([^/])/, '/$1');
  let name = null, args = [];
  for (const [re, n] of ROUTES) {
    const m = path.match(re);
    if (m) { name = n; args = m.slice(1); break; }
  }
  for (const a of document.querySelectorAll('.nav a')) {
    const target = a.getAttribute('href').slice(1);
    const cur = target === '/' ? path === '/' || path === '' : path === target || path.startsWith(`${target}/`);
    if (cur) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (tokenShown) return;
  disposeView();
  const main = document.getElementById('view');
  const box = h('div', { class: 'view' });
  const ctx = { gen, alive: () => gen === routeGen && !tokenShown };
  if (!name || !ippoc.views[name]) {
    main.replaceChildren(h('h2', {}, 'Not found'), h('p', {}, `No view for "${path}". `, h('a', { href: '#/' }, 'Back to the overview')));
    return;
  }
  /* on screen at once: a view draws its frame before its data arrives */
  const loading = h('p', { class: 'muted loading' }, 'Loading…');
  main.replaceChildren(box, loading);
  try {
    const v = await ippoc.views[name](box, ctx, ...args);
    if (!ctx.alive()) { if (v && v.dispose) v.dispose(); return; }
    ippoc.view = Object.assign({ name }, v || {});
    loading.remove();
    if (v && v.mounted) v.mounted();
  } catch (e) {
    if (!ctx.alive()) return;
    if (e instanceof ApiError && e.status === 401) return; /* the token form is up */
    main.replaceChildren(h('h2', {}, 'Could not load this view'), errorBox(e));
  }
  document.title = `${(main.querySelector('h2') || {}).textContent || 'IPPOC'} - IPPOC dashboard`;
}
ippoc.route = route;

/* ---- the live event stream ------------------------------------------------------------------ */
let streamAbort = null, lastEventId = 0, streamRetry = 1000;
function setLive(up) {
  const el = document.querySelector('[data-testid=live]');
  const state = up ? 'connected' : 'disconnected';
  if (el.dataset.state !== state) {
    el.dataset.state = state;
    el.textContent = up ? 'live' : 'offline';
  }
}

function stopStream() {
  if (streamAbort) streamAbort.abort();
  streamAbort = null;
  setLive(false);
}

/* One SSE block ("id:", "event:", "data:" lines) -> the view's onEvent. */
function dispatchBlock(block) {
  let id = 0, type = 'message', data = '';
  for (const line of block.split('\n')) {
    if (!line || line[0] === ':') continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
    if (field === 'id') id = Number(value) || 0;
    else if (field === 'event') type = value;
    else if (field === 'data') data += (data ? '\n' : '') + value;
    else if (field === 'retry' && Number(value) > 0) streamRetry = Number(value);
  }
  if (!data) return;
  if (id) lastEventId = id;
  let ev = null;
  try { ev = JSON.parse(data); } catch (e) { return; }
  onEvent(type, ev);
}

/* A burst of events makes one refresh 300 ms after the first, then at most
 * one every 2 s while they keep coming (a busy machine sends many), every
 * 10 s when they are all anomaly events. The view's refresh gets the set of
 * event types, to fetch again only what they touch. */
const LIVE_TYPES = /^(heal\.|incident\.|anomaly|service\.|alert|brain\.|evolve\.|genome\.|audit)/;
let refreshTimer = 0, lastRefresh = 0, pendingTypes = new Set();
function onEvent(type, ev) {
  const v = ippoc.view;
  if (!v) return;
  if (v.onEvent) v.onEvent(type, ev);
  if (!v.refresh || !LIVE_TYPES.test(type)) return;
  pendingTypes.add(type);
  if (refreshTimer) return;
  const quiet = [...pendingTypes].every((t) => t.startsWith('anomaly')) ? 10000 : 2000;
  const wait = Math.max(300, lastRefresh + quiet - Date.now());
  refreshTimer = setTimeout(async () => {
    refreshTimer = 0;
    const types = pendingTypes;
    pendingTypes = new Set();
    if (ippoc.view !== v) return;
    lastRefresh = Date.now();
    try { await v.refresh(types); } catch (e) { /* the view shows its own errors */ }
  }, wait);
}

async function readStream(signal) {
  const url = `/v1/events/stream${lastEventId ? `?after=${lastEventId}` : ''}`;
  /* low priority: the never-ending stream must not hold the page's load open */
  const r = await fetch(url, { headers: authHeaders({ Accept: 'text/event-stream' }), signal, cache: 'no-store', priority: 'low' });
  if (r.status === 401) { needToken(); return false; }
  if (!r.ok || !r.body) throw new Error(`event stream: HTTP ${r.status}`);
  setLive(true);
  streamRetry = 1000;
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value.replace(/\r\n?/g, '\n');
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      dispatchBlock(buf.slice(0, cut));
      buf = buf.slice(cut + 2);
    }
  }
  return true;
}

async function startStream() {
  stopStream();
  const ctl = new AbortController();
  streamAbort = ctl;
  while (streamAbort === ctl) {
    try {
      if (!(await readStream(ctl.signal))) return;
    } catch (e) { /* reconnect below; the indicator says offline meanwhile */ }
    if (streamAbort !== ctl) return;
    setLive(false);
    await new Promise((res) => setTimeout(res, Math.min(streamRetry, 15000)));
    streamRetry = Math.min(streamRetry * 2, 15000);
  }
}

/* ---- start ------------------------------------------------------------------------------- */
/* One request first: without the token it is the only one to get a 401
 * (each failed request is a line in the browser's console). */
async function boot() {
  try {
    const st = await api('/v1/status');
    ippoc.bootStatus = st; /* the overview's first look uses it: one request fewer */
    document.querySelector('[data-testid=host]').textContent = st.host ? `on ${st.host}` : '';
  } catch (e) {
    if (e.status === 401) return; /* the token form is up; its submit starts the rest */
  }
  route();
  startStream();
}

function start() {
  window.addEventListener('hashchange', () => { route(); document.getElementById('view').focus({ preventScroll: true }); });
  boot();
}
/* DOMContentLoaded comes after every deferred script (charts.js, views.js) has run. */
document.addEventListener('DOMContentLoaded', start);

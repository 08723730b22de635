// dashboard.mjs: the dashboard's real-browser test. Drives Debian's chromium
// (headless, through playwright-core) against a real ippocd that
// tests/integration/test_dashboard.py started, with a token, real services
// and an injected fault; checks the page against the DOM contract
// (its data-testid hooks, issue 14) and prints one JSON line of
// measurements on stdout. Progress goes to stderr; any failed check throws
// (exit 1). The browser is closed on every path.
//
// Environment: IPPOC_URL (the daemon), IPPOC_TOKEN, IPPOC_SCREENSHOT (the
// PNG to write), IPPOC_SERVICES (JSON {name: state} as the API has them),
// IPPOC_DOWN (the service whose restart waits for approval), IPPOC_INCIDENT
// (its incident, closed), IPPOC_OPEN_INCIDENT (one still open),
// IPPOC_PENDING (the pending action's id),
// IPPOC_CHROMIUM (default /usr/bin/chromium), IPPOC_MAX_BYTES (first view).
import { chromium } from 'playwright-core';

const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) throw new Error(`dashboard.mjs: environment variable ${k} is not set`);
  return v;
};
const base = env('IPPOC_URL').replace(/\/$/, '');
const origin = new URL(base).origin;
const token = env('IPPOC_TOKEN');
const shot = env('IPPOC_SCREENSHOT');
const services = JSON.parse(env('IPPOC_SERVICES'));
const down = env('IPPOC_DOWN');
const incident = env('IPPOC_INCIDENT');
const openIncident = env('IPPOC_OPEN_INCIDENT');
const pending = env('IPPOC_PENDING');
const maxBytes = Number(env('IPPOC_MAX_BYTES', String(250 * 1024)));
const T = Number(env('IPPOC_STEP_TIMEOUT_MS', '10000')); // one step's deadline

const t0 = Date.now();
const step = (what) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${what}\n`);
const check = (ok, what) => {
  if (!ok) throw new Error(`check failed: ${what}`);
};

// What the page did, gathered from its events.
const seen = {
  requests: [],        // every URL requested
  foreign: [],         // requests to any origin but the daemon's
  tokenInUrl: [],      // URLs carrying the token
  consoleErrors: [],   // console errors once the token is entered (and page errors always)
  expected401: [],     // "Failed to load resource: 401" before the token: the contract's way to ask for it
  unauthorizedAfter: [], // /v1/ answers of 401 after the token was entered
  bytes: 0,            // encoded bytes received (CDP: headers + body as transferred)
  sizes: [],           // [bytes, URL] of each finished response
  noBearer: [],        // /v1/ requests once the token is entered without "Authorization: Bearer TOKEN"
  checks: [],          // pending header look-ups
};
let tokenEntered = false;

function watch(page, cdp) {
  page.on('request', (r) => {
    const u = r.url();
    seen.requests.push(`${r.method()} ${u}`);
    if (u.includes(token)) seen.tokenInUrl.push(u);
    if (/^(https?|wss?):/.test(u) && new URL(u).origin !== origin) seen.foreign.push(u);
    if (tokenEntered && u.startsWith(`${origin}/v1/`)) {
      seen.checks.push(r.allHeaders().then((h) => {
        if (h.authorization !== `Bearer ${token}`) seen.noBearer.push(u);
      }, () => {}));
    }
  });
  page.on('websocket', (ws) => seen.foreign.push(`websocket ${ws.url()}`));
  page.on('response', (r) => {
    if (tokenEntered && r.status() === 401 && new URL(r.url()).pathname.startsWith('/v1/')) {
      seen.unauthorizedAfter.push(r.url());
    }
  });
  page.on('pageerror', (e) => seen.consoleErrors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = `${m.text()} (${m.location().url || '?'})`;
    if (!tokenEntered && /status of 401/.test(m.text())) seen.expected401.push(text);
    else seen.consoleErrors.push(text);
  });
  // Transferred bytes as chromium counts them (the encoded size of headers
  // and body): finished responses, and what arrived so far on unfinished
  // ones (the event stream).
  const partial = new Map();
  const urls = new Map();
  cdp.on('Network.requestWillBeSent', (e) => urls.set(e.requestId, e.request.url));
  cdp.on('Network.dataReceived', (e) => {
    partial.set(e.requestId, (partial.get(e.requestId) ?? 0) + (e.encodedDataLength ?? 0));
  });
  cdp.on('Network.loadingFinished', (e) => {
    partial.delete(e.requestId);
    seen.bytes += e.encodedDataLength ?? 0;
    seen.sizes.push([e.encodedDataLength ?? 0, urls.get(e.requestId)]);
  });
  return () => seen.bytes + [...partial.values()].reduce((a, b) => a + b, 0);
}

const attr = (loc, name) => loc.getAttribute(name, { timeout: T });

// Polls fn() until it returns a truthy value or T ms pass.
async function until(fn, what, ms = T) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
}

async function go(page, hash) {
  step(`route ${hash}`);
  await page.evaluate((h) => { window.location.hash = h; }, hash);
}

async function tokenForm(page) {
  step('the page asks for the token');
  const form = page.locator('form[data-testid=token-form]');
  await form.waitFor({ state: 'visible', timeout: T });
  const input = form.locator('input[name=token]');
  check(await attr(input, 'type') === 'password', 'the token input is type=password');
  const labelled = await input.evaluate((el) => (el.labels && el.labels.length > 0) ||
    !!el.getAttribute('aria-label') || !!el.getAttribute('aria-labelledby'));
  check(labelled, 'the token input has a label');
  await input.fill(token);
  tokenEntered = true;
  await form.locator('button[type=submit], button:not([type]), input[type=submit]').first().click({ timeout: T });
  await until(async () => (await page.evaluate(() => sessionStorage.getItem('ippoc-token'))) === token,
    'the token in sessionStorage "ippoc-token"');
  await form.waitFor({ state: 'hidden', timeout: T });
}

async function overview(page) {
  step('overview: services, the open incident, the heat map, a chart');
  const rows = page.locator('[data-testid=services] [data-testid=service-row]');
  for (const [name, state] of Object.entries(services)) {
    const row = rows.and(page.locator(`[data-name="${name}"]`));
    await row.first().waitFor({ timeout: T });
    check(await row.count() === 1, `one service-row for ${name}`);
    await until(async () => (await attr(row, 'data-state')) === state,
      `service-row ${name} data-state="${state}" (the API's)`).catch(async (e) => {
      throw new Error(`${e.message}; the page has "${await attr(row, 'data-state')}"`);
    });
  }
  const inc = page.locator(`[data-testid=incidents-open] [data-testid=incident-row][data-id="${openIncident}"]`);
  await inc.waitFor({ timeout: T });
  check(await inc.locator(`a[href="#/incidents/${openIncident}"]`).count() +
        (await inc.evaluate((el, id) => el.matches(`a[href="#/incidents/${id}"]`), openIncident) ? 1 : 0) > 0,
        `incident-row ${openIncident} links to #/incidents/${openIncident}`);
  /* the suggested restart waits in the queue: the overview says so, with a link */
  const awaiting = page.locator('[data-testid=incidents-open] [data-testid=awaiting]');
  await awaiting.waitFor({ timeout: T });
  check(/1 action awaits approval/.test(await awaiting.innerText()) && await awaiting.locator('a[href="#/pending"]').count() === 1,
        'the overview says 1 action awaits approval and links to #/pending');
  const heat = page.locator('[data-testid=heatmap]');
  await heat.waitFor({ timeout: T });
  const series = await attr(heat, 'data-series');
  check(/^\d+$/.test(series ?? ''), `heatmap data-series is a count (got ${series})`);
  const chart = page.locator('[data-testid=chart]').first();
  await chart.waitFor({ timeout: T });
  const points = await until(async () => {
    const n = Number(await attr(chart, 'data-points'));
    return n > 0 ? n : 0;
  }, 'an overview chart with data-points > 0');
  const live = page.locator('[data-testid=live]');
  await until(async () => (await attr(live, 'data-state')) === 'connected', 'live indicator data-state="connected"');
  return { heatmapSeries: Number(series), overviewChartPoints: points, overviewChartMetric: await attr(chart, 'data-metric') };
}

async function metricChart(page) {
  await go(page, '#/metrics');
  const link = page.locator('[data-testid=metric-list] a[href^="#/metrics/"]').first();
  await link.waitFor({ timeout: T });
  const href = await attr(link, 'href');
  const name = decodeURIComponent(href.slice('#/metrics/'.length));
  await link.click({ timeout: T });
  step(`metric chart ${name}`);
  const chart = page.locator('[data-testid=chart]').first();
  await until(async () => (await attr(chart, 'data-metric')) === name, `chart data-metric="${name}"`);
  const points = await until(async () => {
    const n = Number(await attr(chart, 'data-points'));
    return n > 0 ? n : 0;
  }, `chart ${name} with data-points > 0`);
  // live points keep arriving: the count grows while the page is open
  const later = await until(async () => {
    const n = Number(await attr(chart, 'data-points'));
    return n > points ? n : 0;
  }, `chart ${name}'s data-points to grow past ${points} as live points arrive`, 3 * T);
  return { metric: name, points, later };
}

async function incidentList(page) {
  await go(page, '#/incidents');
  const ids = [];
  for (const id of [openIncident, incident]) {
    const row = page.locator(`[data-testid=incident-row][data-id="${id}"]`);
    await row.first().waitFor({ timeout: T });
    check(!!(await attr(row.first(), 'data-state')), `incident-row ${id} has a data-state`);
    ids.push(id);
  }
  return ids;
}

async function incidentPage(page) {
  await go(page, `#/incidents/${incident}`);
  const box = page.locator(`[data-testid=incident][data-id="${incident}"]`);
  await box.waitFor({ timeout: T });
  const state = await attr(box, 'data-state');
  check(!!state, 'the incident has a data-state');
  const items = page.locator('[data-testid=timeline] li[data-kind]');
  await items.first().waitFor({ timeout: T });
  const kinds = await items.evaluateAll((els) => els.map((e) => e.getAttribute('data-kind')));
  const allowed = new Set(['signal', 'diagnosis', 'action', 'outcome', 'evidence']);
  check(kinds.every((k) => allowed.has(k)), `timeline kinds are ${[...allowed]} (got ${kinds})`);
  check(kinds.includes('signal'), `the timeline has a signal entry (got ${kinds})`);
  check(await page.locator('[data-testid=similar]').count() > 0, 'the incident page has [data-testid=similar]');
  return { state, timeline: kinds };
}

async function approve(page) {
  await go(page, '#/pending');
  const row = page.locator(`[data-testid=pending-row][data-id="${pending}"]`);
  await row.waitFor({ timeout: T });
  check(await row.locator('button[data-testid=reject]').count() === 1, 'the pending row has a reject button');
  step(`approve pending action ${pending}`);
  await row.locator('button[data-testid=approve]').click({ timeout: T });
  const notice = page.locator('[role=status][data-testid=notice]');
  const said = await until(async () => (await notice.textContent({ timeout: T }))?.trim(), 'the notice announcing the outcome');
  await row.waitFor({ state: 'detached', timeout: 2 * T });
  return { notice: said };
}

async function afterApproval(page) {
  await go(page, '#/');
  const row = page.locator(`[data-testid=services] [data-testid=service-row][data-name="${down}"]`);
  await until(async () => (await attr(row, 'data-state')) === 'running', `service-row ${down} back to running`, 2 * T);
}

async function main() {
  const executablePath = env('IPPOC_CHROMIUM', '/usr/bin/chromium');
  const args = process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [];
  step(`launch ${executablePath} ${args.join(' ')}`);
  const browser = await chromium.launch({ executablePath, headless: true, args, timeout: 3 * T });
  let page;
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    const transferred = watch(page, cdp);
    const out = { browser: browser.version() };

    step(`open ${base}/`);
    const resp = await page.goto(`${base}/`, { waitUntil: 'load', timeout: 3 * T });
    check(resp && resp.status() === 200, `GET / answers 200 (got ${resp && resp.status()})`);
    await tokenForm(page);
    Object.assign(out, await overview(page));
    // the first view: from opening "/" until the overview first shows all its parts
    out.firstViewBytes = transferred();
    out.firstViewRequests = seen.requests.length;
    step(`first view: ${out.firstViewBytes} bytes in ${out.firstViewRequests} requests; the largest:\n  ` +
      [...seen.sizes].sort((a, b) => b[0] - a[0]).slice(0, 8).map(([n, u]) => `${n} ${u}`).join('\n  '));
    check(out.firstViewBytes <= maxBytes, `first view ${out.firstViewBytes} B <= ${maxBytes} B`);
    await page.screenshot({ path: shot, fullPage: true });
    step(`screenshot ${shot}`);

    out.metricChart = await metricChart(page);
    out.incidents = await incidentList(page);
    out.incident = await incidentPage(page);
    out.approval = await approve(page);
    await afterApproval(page);

    await Promise.race([Promise.all(seen.checks), new Promise((r) => setTimeout(r, T))]);
    check(seen.noBearer.length === 0, `every /v1/ request carries the bearer token (not: ${seen.noBearer.join(', ')})`);
    check(seen.foreign.length === 0, `no request to another origin (got ${seen.foreign.join(', ')})`);
    check(seen.tokenInUrl.length === 0, `no token in any URL (got ${seen.tokenInUrl.join(', ')})`);
    check(seen.unauthorizedAfter.length === 0, `no 401 once the token is entered (got ${seen.unauthorizedAfter.join(', ')})`);
    check(seen.consoleErrors.length === 0, `no console errors (got ${seen.consoleErrors.join(' | ')})`);
    out.requests = seen.requests.length;
    out.expected401 = seen.expected401.length;
    out.seconds = (Date.now() - t0) / 1000;
    process.stdout.write(JSON.stringify(out) + '\n');
    await context.close();
  } catch (e) {
    const failed = shot.replace(/(\.png)?$/, '-failed.png');
    if (page) await page.screenshot({ path: failed, fullPage: true, timeout: T }).then(
      () => step(`screenshot of the failure: ${failed}`), () => {});
    throw e;
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  process.stderr.write(`dashboard.mjs: ${e.stack || e}\n`);
  if (seen.consoleErrors.length) process.stderr.write(`console errors: ${seen.consoleErrors.join('\n  ')}\n`);
  if (seen.foreign.length) process.stderr.write(`foreign requests: ${seen.foreign.join('\n  ')}\n`);
  process.stderr.write(`requests:\n  ${seen.requests.join('\n  ')}\n`);
  process.exitCode = 1;
});

// The console in a real browser: Debian's chromium (/usr/bin/chromium, never a downloaded one)
// driven by the pinned playwright-core, against the real stack that tests/e2e/test_e2e_console.c
// started (ingress with its admin address, devbroker, dialer, transcriber, elevensim, the ctest
// Postgres). Signs in, posts a batch of three drivers on the public address (one made to fail
// by an elevensim script), and checks what a dispatcher sees against Postgres (psql). Exits
// non-zero on the first failed check; screenshots go to CONSOLE_SHOTS_DIR.
//
// Environment (set by the C wrapper): CONSOLE_URL (admin base URL), PUBLIC_URL, CONSOLE_TOKEN,
// SIM_URL, PG_URL, PG_SCHEMA, INGRESS_PID, CONSOLE_SHOTS_DIR, CONSOLE_NODE_MODULES (npm ci's
// node_modules).
import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import {createRequire} from 'node:module';
import os from 'node:os';
import path from 'node:path';

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`console test: ${name} is not set`);
  return v;
}

const CONSOLE = env('CONSOLE_URL');
const PUBLIC = env('PUBLIC_URL');
const TOKEN = env('CONSOLE_TOKEN');
const SIM = env('SIM_URL');
const PG_URL = env('PG_URL');
const PG_SCHEMA = env('PG_SCHEMA');
const SHOTS = env('CONSOLE_SHOTS_DIR');
const INGRESS_PID = env('INGRESS_PID');
const require = createRequire(path.join(env('CONSOLE_NODE_MODULES'), 'noop.js'));
const {chromium} = require('playwright-core');

const CHROMIUM = '/usr/bin/chromium';
const WAIT = 60000; // longest wait for the pipeline to settle a call

let step = 'start';
const log = (msg) => process.stderr.write(`console test: ${msg}\n`);
function check(cond, msg) {
  if (!cond) throw new Error(`[${step}] ${msg}`);
}

/* One psql query (search_path = the test's schema); rows of tab-separated fields. */
function sql(query) {
  const out = execFileSync('psql', ['-X', '-q', '-At', '-F', '\t', '-v', 'ON_ERROR_STOP=1', '-d', PG_URL,
    '-c', `SET search_path TO "${PG_SCHEMA}"`, '-c', query], {encoding: 'utf8', timeout: 20000});
  return out.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
}

async function shot(page, name, opts) {
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot(Object.assign({path: file}, opts || {}));
  log(`screenshot ${file}`);
}

async function postJson(url, body, headers, method) {
  const resp = await fetch(url, {method: method || 'POST', headers: Object.assign({'Content-Type': 'application/json'}, headers || {}), body: JSON.stringify(body)});
  const text = await resp.text();
  return {status: resp.status, text};
}

/* POSTs one BatchCallRequest for drivers ids on the public address; checks the call_sids. */
async function postBatch(stamp, tag, ids, sids, firstName) {
  const r = await postJson(`${PUBLIC}/driver_data/call-elevenlabs`, {
    callType: 'violation_followup', timestamp: stamp, trip_id: `TRIP-${tag}`,
    drivers: ids.map((id, i) => ({driverId: id, driverName: i === 0 && firstName ? firstName : `Driver ${id}`,
      phoneNumber: `+1212555${String(100 + i).padStart(4, '0')}`,
      violations: {tripId: `TRIP-${tag}`, violationDetails: [{type: 'speeding', description: `${70 + i} mph in a 55 zone`}]}})),
  }, {Authorization: `Bearer ${TOKEN}`});
  check(r.status === 202, `POST /driver_data/call-elevenlabs answered ${r.status}: ${r.text}`);
  const answered = JSON.parse(r.text).calls.map((c) => c.call_sid);
  check(JSON.stringify(answered) === JSON.stringify(sids), `call_sids ${answered} instead of ${sids}`);
}

async function main() {
  fs.mkdirSync(SHOTS, {recursive: true});
  for (const f of fs.readdirSync(SHOTS)) if (f.endsWith('.png')) fs.rmSync(path.join(SHOTS, f)); // no stale picture
  check(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing (scripts/deps installs Debian's chromium)`);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'callpipe-console-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: {width: 1280, height: 800},
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const problems = [];
  try {
    const page = ctx.pages()[0] || (await ctx.newPage());
    page.setDefaultTimeout(20000);
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('response', (r) => {
      // (while the ingress listens again after the resync step ended its LISTEN session, /events
      // answers 503 and the page retries: expected)
      const relisten = step === 'resync' && r.status() === 503 && new URL(r.url()).pathname === '/events';
      if (r.status() >= 400 && r.status() !== 401 && !relisten) problems.push(`HTTP ${r.status()} for ${r.request().method()} ${r.url()}`);
    });
    page.on('console', (m) => {
      const t = m.text();
      if (/Content.Security.Policy|Refused to (load|execute|apply)/i.test(t)) problems.push(`CSP: ${t}`);
      else if (m.type() === 'error' && !/status of (401|404|503)/.test(t)) problems.push(`console error: ${t}`); // by URL above
    });
    await run(page, ctx);
  } finally {
    await ctx.close();
    fs.rmSync(profile, {recursive: true, force: true});
  }
  check(problems.length === 0, `the page reported problems:\n  ${problems.join('\n  ')}`);
}

async function run(page) {
  /* ---- sign-in: a wrong token is refused with a message ---- */
  step = 'sign-in';
  const resp = await page.goto(`${CONSOLE}/console`);
  check(resp.status() === 200, `GET /console answered ${resp.status()}`);
  check(/script-src 'self'/.test(resp.headers()['content-security-policy'] || ''), 'the page came without its CSP');
  await page.waitForSelector('#signin-view:not([hidden])');
  await page.getByLabel('API token').fill(`wrong-${TOKEN}`); // the field is labelled
  await page.click('#signin-submit');
  await page.waitForSelector('#signin-error:not([hidden])');
  const err = await page.textContent('#signin-error');
  check(/refused/i.test(err), `wrong token: the error says "${err}"`);
  check(await page.isHidden('#calls-view'), 'wrong token: the calls are shown anyway');
  await shot(page, '01-signin-refused');

  // by keyboard this time: type the token, Enter submits
  await page.fill('#signin-token', '');
  await page.focus('#signin-token');
  await page.keyboard.type(TOKEN);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#calls-view:not([hidden])');
  check(await page.evaluate(() => sessionStorage.getItem('callpipe.console.token')) === TOKEN, 'the token is not in sessionStorage');
  await page.waitForFunction(() => document.getElementById('live').textContent === 'live', null, {timeout: 15000});
  // Gone after any reload: proves that what follows arrives without one.
  await page.evaluate(() => { window.__noReload = true; });

  /* ---- a batch of three drivers, the third made to fail by elevensim ---- */
  step = 'post';
  const stamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const tag = `C${Math.floor(Math.random() * 9000) + 1000}`;
  const ids = [1, 2, 3].map((i) => `${tag}${i}`);
  const sids = ids.map((id) => `EL_${id}_${stamp}`);
  const failSid = sids[2];
  let r = await postJson(`${SIM}/sim/config`, {calls: {[failSid]: {answers: ['success_false']}}}, {}, 'PUT');
  check(r.status === 200, `PUT /sim/config answered ${r.status}: ${r.text}`);
  // the first driver's name is markup: the agent says it in line 1, which must show as text
  await postBatch(stamp, tag, ids, sids, `<img src=x onerror="window.__xss=1">${ids[0]} & <b>co</b>`);

  /* ---- the three calls appear without a reload; follow the first one's transcript live ---- */
  step = 'calls appear';
  const row = (sid) => `#calls-body tr[data-sid="${sid}"]`;
  for (const sid of sids) await page.waitForSelector(row(sid), {timeout: 30000});
  await shot(page, '02-calls-arriving');
  await page.click(`${row(sids[0])} a.sid`);
  await page.waitForSelector('#detail-view:not([hidden])');
  check((await page.textContent('#detail-title')) === sids[0], 'the detail shows another call');
  await page.evaluate(() => { // how many lines the transcript showed, after each change
    const ol = document.getElementById('transcript');
    window.__lineCounts = [ol.children.length];
    new MutationObserver(() => window.__lineCounts.push(ol.children.length)).observe(ol, {childList: true});
  });

  step = 'live transcript';
  await page.waitForFunction(() => document.getElementById('detail-status').textContent === 'completed' &&
    document.querySelectorAll('#transcript li').length >= 1, null, {timeout: WAIT});
  const dbLines = sql(`SELECT t.sequence_number, t.speaker, t.message FROM call_transcriptions t JOIN calls c USING (conversation_id) ` +
    `WHERE c.call_sid = '${sids[0]}' ORDER BY t.sequence_number`);
  check(dbLines.length >= 2, `Postgres has ${dbLines.length} lines for ${sids[0]}`);
  await page.waitForFunction((n) => document.querySelectorAll('#transcript li').length === n, dbLines.length, {timeout: 10000});
  const shown = await page.$$eval('#transcript li', (lis) => lis.map((li) => [li.getAttribute('data-seq'),
    li.querySelector('.speaker').textContent, li.querySelector('.message').textContent]));
  check(JSON.stringify(shown) === JSON.stringify(dbLines), `transcript on the page ${JSON.stringify(shown)} != Postgres ${JSON.stringify(dbLines)}`);
  check(dbLines[0][2].includes('<img src=x'), `line 1 does not carry the driver's name as markup: ${dbLines[0][2]}`);
  check(await page.$$eval('#main img, #main b', (e) => e.length) === 0 && await page.evaluate(() => window.__xss === undefined),
    'stored text was parsed as HTML');
  check(await page.evaluate(() => window.__noReload === true), 'the page was reloaded');
  const counts = await page.evaluate(() => window.__lineCounts);
  check(counts.some((n) => n > 0 && n < dbLines.length), `the transcript never showed part of the call, only ${counts}: lines did not arrive live`);
  await shot(page, '03-call-transcript', {fullPage: true});

  /* ---- back to the list: every call reached its final status, live ---- */
  step = 'calls settle';
  await page.click('a.back');
  await page.waitForSelector('#calls-view:not([hidden])');
  await page.waitForFunction((s) => s.every((sid, i) => {
    const tr = document.querySelector(`#calls-body tr[data-sid="${sid}"]`);
    return tr && tr.getAttribute('data-status') === (i === 2 ? 'failed' : 'completed');
  }), sids, {timeout: WAIT});
  check(await page.evaluate(() => window.__noReload === true), 'the page was reloaded');
  const dbCalls = new Map(sql(`SELECT c.call_sid, c.status, (SELECT count(*) FROM call_transcriptions t WHERE t.conversation_id = c.conversation_id) ` +
    `FROM calls c WHERE c.driver_id LIKE '${tag}%'`).map((x) => [x[0], x]));
  for (const sid of sids) {
    const cells = await page.$eval(row(sid), (tr) => [tr.getAttribute('data-status'), tr.querySelector('td.lines').textContent,
      tr.querySelector('td.driver').textContent]);
    const db = dbCalls.get(sid);
    check(db && db[1] === cells[0], `${sid}: status ${cells[0]} on the page, ${db && db[1]} in Postgres`);
    check(db[2] === cells[1], `${sid}: ${cells[1]} lines on the page, ${db[2]} in Postgres`);
  }
  await shot(page, '04-calls-settled');

  /* ---- filters: status, driver, then cleared ---- */
  step = 'filters';
  const shownSids = () => page.$$eval('#calls-body tr', (trs) => trs.map((tr) => tr.getAttribute('data-sid')).sort());
  const waitRows = (want) => page.waitForFunction((w) => JSON.stringify([...document.querySelectorAll('#calls-body tr')]
    .map((tr) => tr.getAttribute('data-sid')).sort()) === JSON.stringify(w), [...want].sort());
  await page.selectOption('#f-status', 'failed');
  await waitRows([failSid]);
  await page.selectOption('#f-status', '');
  await page.fill('#f-driver', ids[1]);
  await page.click('#calls-filters button[type="submit"]');
  await waitRows([sids[1]]);
  await page.click('#calls-filters button[type="reset"]');
  await waitRows(sids);
  await page.selectOption('#f-window', '900'); // created in the last 15 minutes: all three
  await waitRows(sids);
  await page.selectOption('#f-window', 'custom'); // from an hour ahead (local time): none
  const ahead = await page.evaluate(() => {
    const d = new Date(Date.now() + 3600e3 - new Date().getTimezoneOffset() * 60e3);
    return d.toISOString().slice(0, 16); // minutes: Chromium drops a ":00" second, which fill() reads as malformed
  });
  await page.fill('#f-since', ahead);
  await page.click('#calls-filters button[type="submit"]');
  await waitRows([]);
  await page.waitForSelector('#calls-empty:not([hidden])');
  await page.click('#calls-filters button[type="reset"]');
  await waitRows(sids);

  /* ---- the failed call shows its reason ---- */
  step = 'failed call';
  const reason = sql(`SELECT failure_reason FROM calls WHERE call_sid = '${failSid}'`)[0][0];
  check(reason && reason.length > 0, `Postgres has no failure_reason for ${failSid}`);
  await page.focus(`${row(failSid)} a.sid`); // by keyboard: the call's link, Enter
  await page.keyboard.press('Enter');
  await page.waitForSelector('#detail-failure:not([hidden])');
  const shownReason = await page.textContent('#detail-failure-reason');
  check(shownReason === reason, `failure reason "${shownReason}" on the page, "${reason}" in Postgres`);
  await shot(page, '05-failed-call');

  /* ---- the drivers view has Postgres' counts; sorting works ---- */
  step = 'drivers';
  await page.click('#nav-drivers');
  await page.waitForSelector('#drivers-view:not([hidden])');
  const dbDrivers = sql(`SELECT driver_id, count(*), count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed'), ` +
    `count(*) FILTER (WHERE status = 'in_progress') FROM calls WHERE created_at > now() - interval '30 days' GROUP BY driver_id ORDER BY driver_id`);
  check(dbDrivers.length === 3, `Postgres has ${dbDrivers.length} drivers`);
  await page.waitForFunction((n) => document.querySelectorAll('#drivers-body tr').length === n, dbDrivers.length);
  const readDrivers = () => page.$$eval('#drivers-body tr', (trs) => trs.map((tr) => [tr.getAttribute('data-driver'),
    ...['calls', 'completed', 'failed', 'in_progress'].map((k) => (tr.querySelector(`td.${k} .count`) || tr.querySelector(`td.${k}`)).textContent.trim())]));
  const uiDrivers = (await readDrivers()).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  check(JSON.stringify(uiDrivers) === JSON.stringify(dbDrivers), `drivers on the page ${JSON.stringify(uiDrivers)} != Postgres ${JSON.stringify(dbDrivers)}`);
  await page.click('#drivers-head button[data-sort="failed"]');
  await page.waitForFunction((id) => {
    const first = document.querySelector('#drivers-body tr');
    return first && first.getAttribute('data-driver') === id &&
      document.querySelector('#drivers-head button[data-sort="failed"]').parentElement.getAttribute('aria-sort') === 'descending';
  }, ids[2]);
  await shot(page, '06-drivers');

  /* ---- the overview chart counts the same calls ---- */
  step = 'overview';
  await page.click('#nav-overview');
  await page.waitForSelector('#overview-chart svg');
  const rects = await page.$$eval('#overview-chart svg rect.f-completed, #overview-chart svg rect.f-failed', (r) => r.length);
  check(rects >= 1, 'the overview chart draws no bar');
  const totals = await page.$$eval('#overview-body tr', (trs) => trs.reduce((a, tr) => {
    const td = tr.querySelectorAll('td');
    return [a[0] + Number(td[0].textContent), a[1] + Number(td[1].textContent), a[2] + Number(td[2].textContent)];
  }, [0, 0, 0]));
  const dbTotals = sql(`SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed'), ` +
    `count(*) FILTER (WHERE status = 'in_progress') FROM calls WHERE created_at > now() - interval '24 hours'`)[0].map(Number);
  check(JSON.stringify(totals) === JSON.stringify(dbTotals), `overview totals ${totals} != Postgres ${dbTotals}`);
  await shot(page, '07-overview', {fullPage: true});

  /* ---- a phone-sized screen; then sign out ---- */
  step = 'phone';
  await page.click('#nav-calls');
  await page.setViewportSize({width: 390, height: 844});
  await page.waitForSelector(row(sids[0]));
  await page.waitForFunction(() => !/Loading/.test(document.getElementById('calls-summary').textContent));
  const narrow = async (what) => {
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    check(width <= 390, `the ${what} view is ${width}px wide on a 390px screen`);
  };
  await narrow('calls');
  await shot(page, '08-phone-calls');
  await page.click(`${row(sids[0])} a.sid`);
  await page.waitForFunction((n) => document.querySelectorAll('#transcript li').length === n, dbLines.length);
  await narrow('call');
  await shot(page, '09-phone-call', {fullPage: true});
  await page.click('#nav-drivers');
  await page.waitForSelector('#drivers-body tr');
  await narrow('drivers');
  await shot(page, '10-phone-drivers', {fullPage: true});
  await page.click('#nav-overview');
  await page.waitForSelector('#overview-chart svg');
  await narrow('overview');
  await shot(page, '11-phone-overview', {fullPage: true});
  await page.click('#nav-calls');
  await page.waitForSelector(row(sids[0]));
  await page.setViewportSize({width: 1100, height: 480});
  await shot(page, 'console'); // the README's picture (docs/console.png)

  /* ---- pages of 2: "Load more" follows next_cursor; the tab's token signs in again ---- */
  step = 'load more';
  await page.goto(`${CONSOLE}/console?limit=2#calls`);
  await page.waitForFunction(() => document.getElementById('live').textContent === 'live', null, {timeout: 15000});
  await page.evaluate(() => { window.__noReload = true; });
  await page.waitForFunction(() => !/Loading/.test(document.getElementById('calls-summary').textContent));
  check((await shownSids()).length === 2, `a page of 2 shows ${(await shownSids()).length} calls`);
  check(await page.isVisible('#calls-more'), 'no "Load more" under a full page');
  await page.click('#calls-more');
  await waitRows(sids);
  await page.waitForSelector('#calls-more', {state: 'hidden'});

  /* ---- the server ends the stream with resync: the page reads its lists again and goes on
   * live on a fresh subscription ---- */
  step = 'resync';
  const settled = (sid) => page.waitForFunction((x) => {
    const tr = document.querySelector(`#calls-body tr[data-sid="${x}"]`);
    return tr && tr.getAttribute('data-status') === 'completed';
  }, sid, {timeout: WAIT});
  const more = async (n) => {
    const st = new Date(Date.now() + n * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
    const id = `${tag}${n}`;
    await postBatch(st, tag, [id], [`EL_${id}_${st}`]);
    return `EL_${id}_${st}`;
  };
  await settled(await more(4)); // so that the page holds a Last-Event-ID to resume from
  const seen = [];
  page.on('request', (q) => {
    const p = new URL(q.url()).pathname;
    if (p === '/events') seen.push(`events ${q.headers()['last-event-id'] || '-'}`);
    else if (p === '/calls') seen.push('calls');
  });
  const killed = sql(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'ingress-events-${INGRESS_PID}'`);
  check(killed[0][0] === '1', `no LISTEN session of ingress ${INGRESS_PID} to end`);
  for (let i = 0; i < 150 && !(seen.includes('events -') && seen.includes('calls')); i++) await page.waitForTimeout(100);
  check(seen.includes('events -') && seen.includes('calls'), `after resync the page made these requests: ${seen.join(', ') || 'none'}`);
  check(!seen.some((x) => x.startsWith('events ') && x !== 'events -'), `the page tried to resume after resync: ${seen.join(', ')}`);
  await page.waitForFunction(() => document.getElementById('live').textContent === 'live', null, {timeout: 20000});
  const after = await more(5);
  await page.waitForSelector(row(after), {timeout: 30000});
  await settled(after);
  check(await page.evaluate(() => window.__noReload === true), 'the page was reloaded');

  step = 'sign-out';
  await page.click('#signout');
  await page.waitForSelector('#signin-view:not([hidden])');
  check(await page.evaluate(() => sessionStorage.getItem('callpipe.console.token')) === null, 'the token outlived the sign-out');
  log('all checks passed');
}

main().catch((e) => {
  process.stderr.write(`console test FAILED at step "${step}": ${e.stack || e}\n`);
  process.exit(1);
});

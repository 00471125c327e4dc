/* callpipe console: the operations page served by the ingress on its admin address.
 *
 * Plain script, no build step, no dependency. Reads the admin API (docs/console.md) with the
 * bearer token the user typed, kept in sessionStorage (this tab only). Every piece of data is
 * put on the page with textContent or attributes, never parsed as HTML. Live updates come from
 * GET /events, read with fetch() and a ReadableStream (EventSource cannot send the
 * Authorization header): a small Server-Sent Events parser, resumed with Last-Event-ID. */
'use strict';

(function () {
  const TOKEN_KEY = 'callpipe.console.token';
  /* calls per page: 50, or /console?limit=N (1..200) */
  const PAGE_SIZE = (() => {
    const n = Number(new URLSearchParams(location.search).get('limit'));
    return Number.isInteger(n) && n >= 1 && n <= 200 ? n : 50;
  })();
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const STATUSES = ['completed', 'failed', 'in_progress'];

  const state = {
    token: null,
    view: null,
    /* calls view */
    calls: new Map(), // call_sid -> call object (list item shape)
    order: [], // call_sids, newest first
    rows: new Map(), // call_sid -> <tr>
    cursor: null,
    filters: {},
    callsGen: 0,
    /* detail view */
    detailSid: null,
    detail: null, // {call, lines: Map(seq -> line)}
    detailGen: 0,
    /* drivers view */
    driversSort: 'calls',
    driversOrder: 'desc',
    driversGen: 0,
    overviewGen: 0,
    /* event stream */
    streamGen: 0,
    streamCtl: null,
    lastEventId: null,
    resyncNow: false,
    statsTimer: null,
  };

  const $ = (id) => document.getElementById(id);

  /* ---------- DOM helpers (text only) ---------- */

  function el(tag, attrs, children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    for (const c of children || []) {
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  function svgEl(tag, attrs, text) {
    const e = document.createElementNS(SVG_NS, tag);
    setAttrs(e, attrs);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function setAttrs(e, attrs) {
    for (const k in attrs || {}) {
      const v = attrs[k];
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') e.textContent = String(v);
      else if (k === 'class') e.setAttribute('class', v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function showError(id, msg) {
    const p = $(id);
    p.textContent = msg || '';
    p.hidden = !msg;
  }

  /* ---------- formatting ---------- */

  const pad = (n, w) => String(n).padStart(w || 2, '0');

  function parseTime(iso) {
    if (!iso) return null;
    const d = new Date(iso);
    return isNaN(d.getTime()) ? null : d;
  }

  /* Local time, "2026-12-07 01:02:03"; the UTC instant goes in the title. */
  function fmtTime(iso) {
    const d = parseTime(iso);
    if (!d) return '—';
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function fmtShortTime(d, bucket) {
    if (bucket === 'day') return `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
    return `${pad(d.getHours())}:00`;
  }

  function fmtSeconds(s) {
    if (s === null || s === undefined || !isFinite(s)) return '—';
    s = Math.max(0, Math.round(s));
    if (s < 60) return `${s}s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${pad(s % 60)}s`;
    return `${Math.floor(m / 60)}h ${pad(m % 60)}m`;
  }

  function fmtMs(ms) {
    if (ms === null || ms === undefined) return '—';
    return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  }

  function fmtRate(r) {
    return r === null || r === undefined ? '—' : `${(r * 100).toFixed(r === 1 || r === 0 ? 0 : 1)}%`;
  }

  const statusLabel = (s) => (s === 'in_progress' ? 'in progress' : String(s || '?'));

  /* The duration of a call: end - start; running calls count up to now. */
  function callDuration(c) {
    const start = parseTime(c.call_start_time) || parseTime(c.created_at);
    if (!start) return '—';
    const end = parseTime(c.call_end_time);
    if (end) return fmtSeconds((end - start) / 1000);
    if (c.status === 'in_progress') return fmtSeconds((Date.now() - start) / 1000) + ' …';
    return '—';
  }

  function badge(status) {
    return el('span', {class: `badge s-${status}`, text: statusLabel(status)});
  }

  /* ---------- the API ---------- */

  class ApiError extends Error {
    constructor(status, message, field) {
      super(message);
      this.status = status;
      this.field = field;
    }
  }

  function query(params) {
    const q = new URLSearchParams();
    for (const k in params) {
      if (params[k] !== null && params[k] !== undefined && params[k] !== '') q.set(k, params[k]);
    }
    const s = q.toString();
    return s ? `?${s}` : '';
  }

  /* GET path?params as JSON. A 401 signs out (unless quiet401: sign-in handles it). */
  async function api(path, params, opts) {
    const token = (opts && opts.token) || state.token;
    let resp;
    try {
      resp = await fetch(path + query(params || {}), {
        headers: {Authorization: `Bearer ${token}`, Accept: 'application/json'},
        cache: 'no-store',
        credentials: 'omit',
      });
    } catch (e) {
      throw new ApiError(0, 'The server cannot be reached.');
    }
    let body = null;
    try {
      body = await resp.json();
    } catch (e) {
      body = null;
    }
    if (resp.status === 401) {
      if (!(opts && opts.quiet401)) signOut('The server refused the token (401). Sign in again.');
      throw new ApiError(401, 'The server refused this token.');
    }
    if (!resp.ok) {
      let msg = body && typeof body.error === 'string' ? body.error : `HTTP ${resp.status}`;
      if (resp.status === 503) msg = `The service is unavailable for now (${msg}); try again shortly.`;
      throw new ApiError(resp.status, msg, body && body.field);
    }
    return body;
  }

  /* ---------- sign-in ---------- */

  async function onSignIn(ev) {
    ev.preventDefault();
    const input = $('signin-token');
    const token = input.value.trim();
    if (!token) {
      showError('signin-error', 'Enter the API token.');
      input.focus();
      return;
    }
    $('signin-submit').disabled = true;
    showError('signin-error', '');
    try {
      await api('/calls', {limit: 1}, {token, quiet401: true});
    } catch (e) {
      showError('signin-error', e.status === 401 ? 'Sign-in failed: the server refused this token.' : `Sign-in failed: ${e.message}`);
      $('signin-submit').disabled = false;
      input.select();
      return;
    }
    $('signin-submit').disabled = false;
    input.value = '';
    try {
      sessionStorage.setItem(TOKEN_KEY, token);
    } catch (e) {
      /* storage refused (private mode): the token lives in memory for this page only */
    }
    start(token);
  }

  function start(token) {
    state.token = token;
    $('signin-view').hidden = true;
    $('nav').hidden = false;
    $('session').hidden = false;
    state.view = null;
    route();
    startStream();
  }

  function signOut(message) {
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) {
      /* nothing stored */
    }
    state.token = null;
    stopStream();
    state.calls.clear();
    state.order = [];
    state.rows.clear();
    closeDetail();
    state.lastEventId = null;
    state.callsLoaded = false;
    state.callsGen++;
    state.detailGen++;
    state.driversGen++;
    state.overviewGen++;
    clear($('calls-body'));
    clear($('transcript'));
    clear($('drivers-body'));
    clear($('overview-chart'));
    for (const id of ['calls-view', 'detail-view', 'drivers-view', 'overview-view', 'nav', 'session']) {
      $(id).hidden = true;
    }
    $('signin-view').hidden = false;
    showError('signin-error', message || '');
    $('signin-token').focus();
  }

  /* ---------- routing: #calls, #call/<sid>, #drivers, #overview ---------- */

  function route() {
    if (!state.token) return;
    const h = decodeHash();
    let view = 'calls';
    let sid = null;
    if (h.startsWith('call/')) {
      view = 'detail';
      sid = h.slice(5);
    } else if (h === 'drivers' || h === 'overview') {
      view = h;
    }
    const prev = state.view;
    state.view = view;
    for (const v of ['calls', 'detail', 'drivers', 'overview']) $(`${v}-view`).hidden = v !== view;
    for (const v of ['calls', 'drivers', 'overview']) {
      const a = $(`nav-${v}`);
      if (v === view || (v === 'calls' && view === 'detail')) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    if (view !== 'detail') closeDetail();
    if (view === 'calls') {
      if (!state.callsLoaded || (prev !== 'calls' && prev !== 'detail')) loadCalls();
      else refreshDurations();
    } else if (view === 'detail') {
      openDetail(sid);
    } else if (view === 'drivers') {
      renderDriversHead();
      loadDrivers();
    } else {
      loadOverview();
    }
    if (prev !== null && prev !== view && view !== 'detail') $('main').focus();
  }

  function decodeHash() {
    const raw = location.hash.replace(/^#/, '');
    try {
      return decodeURIComponent(raw);
    } catch (e) {
      return raw;
    }
  }

  /* ---------- calls ---------- */

  function readCallFilters() {
    const f = {
      status: $('f-status').value,
      driver_id: $('f-driver').value.trim(),
      trip_id: $('f-trip').value.trim(),
      since: null,
      until: null,
    };
    const w = $('f-window').value;
    $('f-custom-since').hidden = w !== 'custom';
    $('f-custom-until').hidden = w !== 'custom';
    if (w === 'custom') {
      const s = $('f-since').value;
      const u = $('f-until').value;
      if (s) f.since = new Date(s).toISOString();
      if (u) f.until = new Date(u).toISOString();
    } else if (w) {
      f.since = new Date(Date.now() - Number(w) * 1000).toISOString();
    }
    return f;
  }

  async function loadCalls() {
    const gen = ++state.callsGen;
    state.filters = readCallFilters();
    showError('calls-error', '');
    $('calls-summary').textContent = 'Loading…';
    let body;
    try {
      body = await api('/calls', Object.assign({limit: PAGE_SIZE}, state.filters));
    } catch (e) {
      if (gen !== state.callsGen || e.status === 401) return;
      showError('calls-error', `Could not load the calls: ${e.message}`);
      $('calls-summary').textContent = '';
      return;
    }
    if (gen !== state.callsGen) return;
    const old = state.calls;
    state.calls = new Map();
    state.order = [];
    for (const c of body.calls || []) addCall(mergeKnown(c, old.get(c.call_sid)), false);
    /* calls an event announced after the list was read (newer than its newest row) */
    const newest = state.order.length ? parseTime(state.calls.get(state.order[0]).created_at) : null;
    for (const [sid, c] of old) {
      if (state.calls.has(sid) || !c.fromEvent || !matchesFilters(c)) continue;
      const t = parseTime(c.created_at);
      if (!newest || (t && t > newest)) addCall(c, true);
    }
    state.cursor = body.next_cursor || null;
    state.callsLoaded = true;
    renderCalls();
  }

  async function loadMoreCalls() {
    if (!state.cursor) return;
    const gen = state.callsGen;
    const btn = $('calls-more');
    btn.disabled = true;
    let body;
    try {
      body = await api('/calls', Object.assign({limit: PAGE_SIZE, cursor: state.cursor}, state.filters));
    } catch (e) {
      btn.disabled = false;
      if (gen === state.callsGen && e.status !== 401) showError('calls-error', `Could not load more calls: ${e.message}`);
      return;
    }
    btn.disabled = false;
    if (gen !== state.callsGen) return;
    for (const c of body.calls || []) {
      if (state.calls.has(c.call_sid)) continue;
      addCall(c, false);
      $('calls-body').appendChild(renderRow(c));
    }
    state.cursor = body.next_cursor || null;
    renderCallsFooter();
  }

  /* What an event told us is never older than a list read before it arrived. */
  function mergeKnown(c, known) {
    if (!known) return c;
    if (c.status === 'in_progress' && known.status !== 'in_progress') {
      c.status = known.status;
      c.call_end_time = c.call_end_time || known.call_end_time;
      c.failure_reason = c.failure_reason || known.failure_reason;
    }
    c.line_count = Math.max(c.line_count || 0, known.line_count || 0);
    c.conversation_id = c.conversation_id || known.conversation_id;
    return c;
  }

  function addCall(c, front) {
    c.line_count = c.line_count || 0;
    state.calls.set(c.call_sid, c);
    if (front) state.order.unshift(c.call_sid);
    else state.order.push(c.call_sid);
  }

  function matchesFilters(c) {
    const f = state.filters;
    if (f.status && c.status !== f.status) return false;
    if (f.driver_id && c.driver_id !== f.driver_id) return false;
    if (f.trip_id && c.trip_id !== f.trip_id) return false;
    const t = parseTime(c.created_at);
    if (f.since && t && t < parseTime(f.since)) return false;
    if (f.until && (!t || t >= parseTime(f.until))) return false;
    return true;
  }

  function renderCalls() {
    const body = $('calls-body');
    clear(body);
    state.rows.clear();
    const frag = document.createDocumentFragment();
    for (const sid of state.order) frag.appendChild(renderRow(state.calls.get(sid)));
    body.appendChild(frag);
    renderCallsFooter();
  }

  function renderCallsFooter() {
    const n = state.order.length;
    $('calls-empty').hidden = n > 0;
    $('calls-more').hidden = !state.cursor;
    $('calls-summary').textContent = n === 0 ? '' : `${n} call${n === 1 ? '' : 's'} shown${state.cursor ? ', more below' : ''}.`;
  }

  function renderRow(c) {
    const tr = el('tr', {'data-sid': c.call_sid, 'data-status': c.status});
    fillRow(tr, c);
    state.rows.set(c.call_sid, tr);
    return tr;
  }

  function fillRow(tr, c) {
    clear(tr);
    tr.setAttribute('data-status', c.status);
    const link = el('a', {href: `#call/${encodeURIComponent(c.call_sid)}`, class: 'sid', text: c.call_sid});
    const status = el('td', {class: 'status', 'data-label': 'Status'}, [badge(c.status)]);
    if (c.status === 'failed' && c.failure_reason) {
      status.appendChild(el('span', {class: 'reason', text: c.failure_reason}));
    }
    tr.appendChild(el('th', {scope: 'row', class: 'call', 'data-label': 'Call'}, [link]));
    tr.appendChild(status);
    tr.appendChild(el('td', {class: 'driver', 'data-label': 'Driver', text: c.driver_id || '—'}));
    tr.appendChild(el('td', {class: 'trip', 'data-label': 'Trip', text: c.trip_id || '—'}));
    const started = c.call_start_time || c.created_at;
    tr.appendChild(el('td', {class: 'started', 'data-label': 'Started', title: started || null, text: fmtTime(started)}));
    tr.appendChild(el('td', {class: 'duration num', 'data-label': 'Duration', text: callDuration(c)}));
    tr.appendChild(el('td', {class: 'lines num', 'data-label': 'Lines', text: String(c.line_count || 0)}));
  }

  function updateRow(sid) {
    const c = state.calls.get(sid);
    if (!c) return;
    if (!matchesFilters(c)) {
      const tr = state.rows.get(sid);
      if (tr) tr.remove();
      state.rows.delete(sid);
      state.calls.delete(sid);
      state.order = state.order.filter((s) => s !== sid);
      renderCallsFooter();
      return;
    }
    const tr = state.rows.get(sid);
    if (tr) fillRow(tr, c);
  }

  /* Running calls' durations tick. */
  function refreshDurations() {
    if (state.view !== 'calls') return;
    for (const [sid, tr] of state.rows) {
      const c = state.calls.get(sid);
      if (c && c.status === 'in_progress') {
        const td = tr.querySelector('td.duration');
        if (td) td.textContent = callDuration(c);
      }
    }
  }

  /* ---------- a call's detail ---------- */

  function closeDetail() {
    if (state.detail && state.detail.refetch) clearTimeout(state.detail.refetch);
    state.detail = null;
    state.detailSid = null;
    state.detailGen++;
  }

  async function openDetail(sid) {
    closeDetail();
    const gen = ++state.detailGen;
    state.detailSid = sid;
    state.detail = {call: state.calls.get(sid) || null, lines: new Map(), loaded: false};
    $('detail-title').textContent = sid;
    showError('detail-error', '');
    clear($('transcript'));
    clear($('detail-facts'));
    $('detail-status').hidden = true;
    $('detail-failure').hidden = true;
    $('transcript-empty').hidden = true;
    $('detail-title').focus();
    await fetchDetail(gen);
  }

  async function fetchDetail(gen) {
    const sid = state.detailSid;
    if (!sid) return;
    let body;
    try {
      body = await api(`/calls/${encodeURIComponent(sid)}`);
    } catch (e) {
      if (gen !== state.detailGen || e.status === 401) return;
      showError('detail-error', e.status === 404 ? 'No call has this call_sid.' : `Could not load the call: ${e.message}`);
      return;
    }
    if (gen !== state.detailGen) return;
    const d = state.detail;
    d.call = body.call;
    d.loaded = true;
    for (const line of body.transcript || []) d.lines.set(line.sequence_number, line);
    renderDetail();
  }

  function renderDetail() {
    const d = state.detail;
    const c = d.call;
    if (!c) return;
    const st = $('detail-status');
    st.className = `badge s-${c.status}`;
    st.textContent = statusLabel(c.status);
    st.hidden = false;
    const failed = c.status === 'failed';
    $('detail-failure').hidden = !failed;
    $('detail-failure-reason').textContent = failed ? c.failure_reason || '(no reason stored)' : '';
    const facts = $('detail-facts');
    clear(facts);
    const fact = (k, v, title) => {
      facts.appendChild(el('dt', {text: k}));
      facts.appendChild(el('dd', {text: v === null || v === undefined || v === '' ? '—' : String(v), title: title || null}));
    };
    fact('Driver', c.driver_id);
    fact('Trip', c.trip_id);
    fact('Conversation', c.conversation_id);
    fact('Created', fmtTime(c.created_at), c.created_at);
    fact('Started', fmtTime(c.call_start_time), c.call_start_time);
    fact('Ended', fmtTime(c.call_end_time), c.call_end_time);
    fact('Duration', callDuration(c));
    fact('Dial attempts', c.dial_attempts);
    renderTranscript();
  }

  function renderTranscript() {
    const d = state.detail;
    const ol = $('transcript');
    const seqs = [...d.lines.keys()].sort((a, b) => a - b);
    clear(ol);
    let prev = null;
    for (const seq of seqs) {
      const line = d.lines.get(seq);
      const speaker = String(line.speaker || '?');
      const li = el('li', {class: `line sp-${speaker.replace(/[^a-z0-9_-]/gi, '')}`, 'data-seq': seq, value: seq});
      /* the speaker is named once per turn on screen, on every line for screen readers */
      li.appendChild(el('span', {class: speaker === prev ? 'speaker same' : 'speaker', text: speaker}));
      li.appendChild(el('span', {class: 'sr-only', text: ': '}));
      li.appendChild(el('span', {class: 'message', text: line.message || ''}));
      li.appendChild(el('span', {class: 'meta', title: line.created_at || null, text: `#${seq} · ${fmtTime(line.created_at)}`}));
      ol.appendChild(li);
      prev = speaker;
    }
    $('transcript-empty').hidden = seqs.length > 0 || !d.loaded;
    $('transcript-empty').textContent = d.call && d.call.status === 'in_progress' ? 'No line stored yet.' : 'No line was stored.';
    /* a gap means a line we did not see: read the call again */
    if (d.loaded && seqs.length && seqs[seqs.length - 1] !== seqs.length) scheduleDetailRefetch();
  }

  function scheduleDetailRefetch() {
    if (state.detail.refetch) return;
    const d = state.detail;
    d.refetch = setTimeout(() => {
      d.refetch = null;
      if (state.detail === d && state.detailSid) fetchDetail(state.detailGen);
    }, 500);
  }

  /* ---------- drivers ---------- */

  const DRIVER_COLS = [
    ['driver_id', 'Driver', false],
    ['calls', 'Calls', true],
    ['completed', 'Completed', true],
    ['failed', 'Failed', true],
    ['in_progress', 'In progress', true],
    ['success_rate', 'Success rate', true],
    ['median_duration_s', 'Median duration', true],
    ['last_call_at', 'Last call', false],
  ];

  function renderDriversHead() {
    const head = $('drivers-head');
    clear(head);
    for (const [key, label, num] of DRIVER_COLS) {
      const active = state.driversSort === key;
      const th = el('th', {scope: 'col', class: num ? 'num' : null, 'aria-sort': active ? (state.driversOrder === 'asc' ? 'ascending' : 'descending') : 'none'});
      const btn = el('button', {type: 'button', class: 'sort', 'data-sort': key}, [label, el('span', {class: 'arrow', 'aria-hidden': 'true', text: active ? (state.driversOrder === 'asc' ? ' ▲' : ' ▼') : ''})]);
      btn.addEventListener('click', () => {
        if (state.driversSort === key) state.driversOrder = state.driversOrder === 'asc' ? 'desc' : 'asc';
        else {
          state.driversSort = key;
          state.driversOrder = key === 'driver_id' ? 'asc' : 'desc';
        }
        renderDriversHead();
        loadDrivers().then(() => {
          const b = head.querySelector(`button[data-sort="${key}"]`);
          if (b) b.focus();
        });
      });
      th.appendChild(btn);
      head.appendChild(th);
    }
    head.appendChild(el('th', {scope: 'col', class: 'chart-col', text: 'Outcomes'}));
  }

  async function loadDrivers() {
    const gen = ++state.driversGen;
    const secs = Number($('d-window').value);
    const until = new Date();
    const params = {
      since: new Date(until.getTime() - secs * 1000).toISOString(),
      until: until.toISOString(),
      sort: state.driversSort,
      order: state.driversOrder,
      limit: 200,
      driver_id: $('d-driver').value.trim(),
    };
    showError('drivers-error', '');
    let body;
    try {
      body = await api('/stats/drivers', params);
    } catch (e) {
      if (gen === state.driversGen && e.status !== 401) showError('drivers-error', `Could not load the drivers: ${e.message}`);
      return;
    }
    if (gen !== state.driversGen) return;
    const drivers = body.drivers || [];
    const tbody = $('drivers-body');
    clear(tbody);
    for (const d of drivers) tbody.appendChild(driverRow(d));
    $('drivers-empty').hidden = drivers.length > 0;
    const total = body.total_drivers !== undefined ? body.total_drivers : drivers.length;
    $('drivers-summary').textContent = `${drivers.length} of ${total} driver${total === 1 ? '' : 's'}, ${fmtTime(body.since)} – ${fmtTime(body.until)}.`;
  }

  function driverRow(d) {
    const tr = el('tr', {'data-driver': d.driver_id});
    tr.appendChild(el('th', {scope: 'row', class: 'driver', 'data-label': 'Driver'}, [
      el('a', {href: '#calls', 'data-driver': d.driver_id, text: d.driver_id}),
    ]));
    tr.querySelector('a').addEventListener('click', (ev) => {
      ev.preventDefault();
      $('f-driver').value = d.driver_id;
      if (location.hash === '#calls') loadCalls();
      else location.hash = '#calls';
    });
    const num = (cls, label, v) => tr.appendChild(el('td', {class: `${cls} num`, 'data-label': label, text: v === null || v === undefined ? '—' : String(v)}));
    num('calls', 'Calls', d.calls);
    num('completed', 'Completed', d.completed);
    const failed = el('td', {class: 'failed num', 'data-label': 'Failed'}, [el('span', {class: 'count', text: String(d.failed)})]);
    const reasons = Object.entries(d.failure_reasons || {});
    if (reasons.length) {
      const list = el('ul', {class: 'reasons'});
      for (const [r, n] of reasons.sort((a, b) => b[1] - a[1])) list.appendChild(el('li', {text: `${r}: ${n}`}));
      failed.appendChild(el('details', {}, [el('summary', {text: 'reasons'}), list]));
    }
    tr.appendChild(failed);
    num('in_progress', 'In progress', d.in_progress);
    num('success_rate', 'Success rate', fmtRate(d.success_rate));
    num('median', 'Median duration', d.median_duration_s === null ? null : fmtSeconds(d.median_duration_s));
    tr.appendChild(el('td', {class: 'last', 'data-label': 'Last call', title: d.last_call_at || null, text: fmtTime(d.last_call_at)}));
    tr.appendChild(el('td', {class: 'chart-col', 'data-label': 'Outcomes'}, [outcomeBar(d)]));
    return tr;
  }

  /* One stacked bar: completed / failed / in progress, as shares of the driver's calls. */
  function outcomeBar(d) {
    const W = 120;
    const H = 14;
    const total = Math.max(1, d.calls || 0);
    const label = `${d.completed} completed, ${d.failed} failed, ${d.in_progress} in progress of ${d.calls} calls`;
    const s = svgEl('svg', {class: 'bar', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': label});
    s.appendChild(svgEl('title', {}, label));
    s.appendChild(svgEl('rect', {class: 'track', x: 0, y: 0, width: W, height: H, rx: 2}));
    let x = 0;
    for (const k of STATUSES) {
      const w = (W * (d[k] || 0)) / total;
      if (w > 0) s.appendChild(svgEl('rect', {class: `f-${k}`, x: x.toFixed(2), y: 0, width: w.toFixed(2), height: H}));
      x += w;
    }
    return s;
  }

  /* ---------- overview ---------- */

  async function loadOverview() {
    const gen = ++state.overviewGen;
    const [secs, bucket] = $('o-window').value.split('/');
    const until = new Date();
    const params = {since: new Date(until.getTime() - Number(secs) * 1000).toISOString(), until: until.toISOString(), bucket};
    showError('overview-error', '');
    let body;
    try {
      body = await api('/stats/overview', params);
    } catch (e) {
      if (gen === state.overviewGen && e.status !== 401) showError('overview-error', `Could not load the overview: ${e.message}`);
      return;
    }
    if (gen !== state.overviewGen) return;
    const buckets = body.buckets || [];
    let tot = {completed: 0, failed: 0, in_progress: 0};
    for (const b of buckets) for (const k of STATUSES) tot[k] += b[k] || 0;
    $('overview-summary').textContent = `${tot.completed + tot.failed + tot.in_progress} calls: ${tot.completed} completed, ${tot.failed} failed, ${tot.in_progress} in progress (${fmtTime(body.since)} – ${fmtTime(body.until)}).`;
    $('overview-caption').textContent = `Calls per ${body.bucket || bucket} by status`;
    const box = $('overview-chart');
    clear(box);
    box.appendChild(overviewChart(buckets, body.bucket || bucket));
    const tbody = $('overview-body');
    clear(tbody);
    for (const b of buckets) {
      tbody.appendChild(el('tr', {}, [
        el('th', {scope: 'row', title: b.start, text: fmtTime(b.start)}),
        el('td', {class: 'num', text: String(b.completed || 0)}),
        el('td', {class: 'num', text: String(b.failed || 0)}),
        el('td', {class: 'num', text: String(b.in_progress || 0)}),
      ]));
    }
    const reasons = body.failure_reasons || [];
    const rb = $('reasons-body');
    clear(rb);
    for (const r of reasons) rb.appendChild(el('tr', {}, [el('td', {text: r.reason}), el('td', {class: 'num', text: String(r.count)})]));
    $('reasons-empty').hidden = reasons.length > 0;
    $('reasons-table').hidden = reasons.length === 0;
    const lat = body.dial_latency_ms || {};
    const dl = $('latency');
    clear(dl);
    for (const [k, v] of [['Calls measured', lat.count === undefined ? '—' : String(lat.count)], ['p50', fmtMs(lat.p50)], ['p90', fmtMs(lat.p90)], ['p99', fmtMs(lat.p99)]]) {
      dl.appendChild(el('dt', {text: k}));
      dl.appendChild(el('dd', {text: v}));
    }
  }

  /* Stacked columns per bucket; axis labels as SVG text (textContent). */
  function overviewChart(buckets, bucket) {
    const W = 720;
    const H = 220;
    const L = 36;
    const B = 22;
    const T = 8;
    const plotW = W - L - 6;
    const plotH = H - B - T;
    let max = 0;
    for (const b of buckets) max = Math.max(max, (b.completed || 0) + (b.failed || 0) + (b.in_progress || 0));
    const step = niceStep(max);
    const top = Math.max(step, Math.ceil(max / step) * step);
    const total = buckets.reduce((a, b) => a + (b.completed || 0) + (b.failed || 0) + (b.in_progress || 0), 0);
    const s = svgEl('svg', {class: 'overview', viewBox: `0 0 ${W} ${H}`, role: 'img', preserveAspectRatio: 'xMidYMid meet',
      'aria-label': `Stacked columns: calls per ${bucket} by status, ${buckets.length} ${bucket}s, ${total} calls in all; the table below has the figures`});
    for (let v = 0; v <= top; v += step) {
      const y = T + plotH - (plotH * v) / top;
      s.appendChild(svgEl('line', {class: 'grid', x1: L, x2: W - 6, y1: y.toFixed(1), y2: y.toFixed(1)}));
      s.appendChild(svgEl('text', {class: 'axis', x: L - 6, y: (y + 4).toFixed(1), 'text-anchor': 'end'}, String(v)));
    }
    const n = Math.max(1, buckets.length);
    const bw = plotW / n;
    const every = Math.max(1, Math.ceil(n / 8));
    buckets.forEach((b, i) => {
      const x = L + i * bw;
      let y = T + plotH;
      const d = parseTime(b.start);
      const parts = [];
      for (const k of STATUSES) {
        const v = b[k] || 0;
        parts.push(`${v} ${statusLabel(k)}`);
        if (!v) continue;
        const h = (plotH * v) / top;
        y -= h;
        s.appendChild(svgEl('rect', {class: `f-${k}`, x: (x + bw * 0.12).toFixed(2), y: y.toFixed(2), width: (bw * 0.76).toFixed(2), height: h.toFixed(2)}));
      }
      const hit = svgEl('rect', {class: 'hit', x: x.toFixed(2), y: T, width: bw.toFixed(2), height: plotH});
      hit.appendChild(svgEl('title', {}, `${fmtTime(b.start)}: ${parts.join(', ')}`));
      s.appendChild(hit);
      if (d && i % every === 0) {
        s.appendChild(svgEl('text', {class: 'axis', x: (x + bw / 2).toFixed(1), y: H - 6, 'text-anchor': 'middle'}, fmtShortTime(d, bucket)));
      }
    });
    s.appendChild(svgEl('line', {class: 'base', x1: L, x2: W - 6, y1: T + plotH, y2: T + plotH}));
    return s;
  }

  function niceStep(max) {
    if (max <= 5) return 1;
    const raw = max / 5;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (raw <= m * p) return m * p;
    return 10 * p;
  }

  /* ---------- the event stream ---------- */

  function setLive(text, cls) {
    const live = $('live');
    live.textContent = text;
    live.className = `live ${cls || ''}`;
  }

  function startStream() {
    stopStream();
    const gen = ++state.streamGen;
    streamLoop(gen);
  }

  function stopStream() {
    state.streamGen++;
    if (state.streamCtl) state.streamCtl.abort();
    state.streamCtl = null;
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  async function streamLoop(gen) {
    let delay = 1000;
    let first = true;
    let lastResync = 0;
    while (gen === state.streamGen && state.token) {
      const ctl = new AbortController();
      state.streamCtl = ctl;
      const headers = {Authorization: `Bearer ${state.token}`, Accept: 'text/event-stream'};
      const resuming = state.lastEventId !== null;
      if (resuming) headers['Last-Event-ID'] = state.lastEventId;
      let opened = false;
      try {
        setLive(first ? 'connecting…' : 'reconnecting…', 'wait');
        const resp = await fetch('/events', {headers, signal: ctl.signal, cache: 'no-store', credentials: 'omit'});
        if (gen !== state.streamGen) return;
        if (resp.status === 401) {
          signOut('The server refused the token (401). Sign in again.');
          return;
        }
        if (!resp.ok || !resp.body) throw new Error(`HTTP ${resp.status}`);
        opened = true;
        delay = 1000;
        setLive('live', 'on');
        /* A fresh subscription (not a resume) may have missed what was committed before it
         * began, the first one included (the views' first read may be older): read again. */
        if (!resuming) reloadViews();
        first = false;
        await readSse(resp.body, gen);
      } catch (e) {
        if (gen !== state.streamGen) return;
      }
      if (gen !== state.streamGen) return;
      first = false;
      if (opened && state.resyncNow) {
        state.resyncNow = false;
        /* the server asked for a re-sync: reconnect at once, without Last-Event-ID; but never
         * in a tight loop (a server that keeps asking gets the backoff below) */
        const now = Date.now();
        const recent = now - lastResync < 5000;
        lastResync = now;
        if (!recent) continue;
      }
      setLive(`offline, retrying in ${Math.round(delay / 1000)} s`, 'off');
      await sleep(delay);
      delay = Math.min(delay * 2, 15000);
    }
  }

  /* Reads one SSE response to its end. Handles \n, \r\n and \r line ends, comments, multi-line
   * data, id and event fields (https://html.spec.whatwg.org/#event-stream-interpretation). */
  async function readSse(stream, gen) {
    const reader = stream.getReader();
    const dec = new TextDecoder();
    let buf = '';
    let ev = {type: '', data: [], id: null};
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return;
      if (gen !== state.streamGen) {
        reader.cancel();
        return;
      }
      buf += dec.decode(value, {stream: true});
      for (;;) {
        const m = /\r\n|\r|\n/.exec(buf);
        if (!m) break;
        if (m[0] === '\r' && m.index + 1 === buf.length) break; // maybe \r\n split over chunks
        const line = buf.slice(0, m.index);
        buf = buf.slice(m.index + m[0].length);
        if (line === '') {
          dispatch(ev);
          ev = {type: '', data: [], id: null};
          if (state.resyncNow) {
            reader.cancel();
            return;
          }
          continue;
        }
        if (line[0] === ':') continue;
        const c = line.indexOf(':');
        const field = c < 0 ? line : line.slice(0, c);
        let val = c < 0 ? '' : line.slice(c + 1);
        if (val[0] === ' ') val = val.slice(1);
        if (field === 'event') ev.type = val;
        else if (field === 'data') ev.data.push(val);
        else if (field === 'id' && val.indexOf('\0') < 0) ev.id = val;
      }
      if (buf.length > 1 << 20) throw new Error('event line too long');
    }
  }

  function dispatch(ev) {
    if (ev.id !== null) state.lastEventId = ev.id || null;
    if (!ev.data.length) return;
    let data;
    try {
      data = JSON.parse(ev.data.join('\n'));
    } catch (e) {
      return;
    }
    if (!data || typeof data !== 'object') return;
    switch (ev.type) {
      case 'call.created':
        onCallCreated(data);
        break;
      case 'call.dialled':
        onCallChanged(data.call_sid, {conversation_id: data.conversation_id});
        break;
      case 'line.stored':
        onLineStored(data);
        break;
      case 'call.completed':
        onCallChanged(data.call_sid, {status: 'completed', call_end_time: data.call_end_time});
        scheduleStats();
        break;
      case 'call.failed':
        onCallChanged(data.call_sid, {status: 'failed', call_end_time: data.call_end_time, failure_reason: data.failure_reason});
        scheduleStats();
        break;
      case 'resync':
        /* the lists are read again once the new subscription is open */
        state.lastEventId = null;
        state.resyncNow = true;
        break;
      default:
        break;
    }
  }

  function onCallCreated(d) {
    if (!d.call_sid) return;
    scheduleStats();
    if (state.calls.has(d.call_sid)) return;
    const c = {
      call_sid: d.call_sid,
      driver_id: d.driver_id,
      trip_id: d.trip_id,
      status: d.status || 'in_progress',
      created_at: d.created_at,
      call_start_time: d.created_at,
      call_end_time: null,
      failure_reason: null,
      line_count: 0,
      fromEvent: true,
    };
    if (!matchesFilters(c)) return;
    addCall(c, true);
    if (state.view === 'calls' || state.view === 'detail') {
      $('calls-body').insertBefore(renderRow(c), $('calls-body').firstChild);
      renderCallsFooter();
    }
  }

  function onCallChanged(sid, changes) {
    const c = state.calls.get(sid);
    if (c) {
      Object.assign(c, changes);
      updateRow(sid);
    }
    if (state.detailSid === sid && state.detail && state.detail.call) {
      Object.assign(state.detail.call, changes);
      renderDetail();
      if (changes.status) scheduleDetailRefetch(); // the stored end time and reason
    }
  }

  function onLineStored(d) {
    const c = state.calls.get(d.call_sid);
    if (c && typeof d.sequence_number === 'number') {
      c.line_count = Math.max(c.line_count || 0, d.sequence_number);
      c.last_line_at = d.created_at;
      const tr = state.rows.get(d.call_sid);
      if (tr) {
        const td = tr.querySelector('td.lines');
        if (td) td.textContent = String(c.line_count);
      }
    }
    if (state.detailSid === d.call_sid && state.detail) {
      state.detail.lines.set(d.sequence_number, d);
      if (state.detail.loaded) renderTranscript();
    }
  }

  function reloadViews() {
    if (state.view === 'calls' || state.view === 'detail') loadCalls();
    if (state.view === 'detail' && state.detail) fetchDetail(state.detailGen);
    if (state.view === 'drivers') loadDrivers();
    if (state.view === 'overview') loadOverview();
  }

  /* Stats views follow the stream too, at most every 2 s. */
  function scheduleStats() {
    if (state.view !== 'drivers' && state.view !== 'overview') return;
    if (state.statsTimer) return;
    state.statsTimer = setTimeout(() => {
      state.statsTimer = null;
      if (state.view === 'drivers') loadDrivers();
      else if (state.view === 'overview') loadOverview();
    }, 2000);
  }

  /* ---------- wiring ---------- */

  function init() {
    $('signin-form').addEventListener('submit', onSignIn);
    $('signout').addEventListener('click', () => signOut('Signed out.'));
    $('calls-filters').addEventListener('submit', (ev) => {
      ev.preventDefault();
      loadCalls();
    });
    $('calls-filters').addEventListener('reset', () => setTimeout(loadCalls, 0));
    for (const id of ['f-status', 'f-window']) $(id).addEventListener('change', () => {
      if ($('f-window').value !== 'custom' || $('f-since').value || $('f-until').value) loadCalls();
      else readCallFilters();
    });
    $('calls-more').addEventListener('click', loadMoreCalls);
    $('drivers-filters').addEventListener('submit', (ev) => {
      ev.preventDefault();
      loadDrivers();
    });
    $('d-window').addEventListener('change', loadDrivers);
    $('overview-filters').addEventListener('submit', (ev) => ev.preventDefault());
    $('o-window').addEventListener('change', loadOverview);
    window.addEventListener('hashchange', route);
    setInterval(refreshDurations, 1000);

    let token = null;
    try {
      token = sessionStorage.getItem(TOKEN_KEY);
    } catch (e) {
      token = null;
    }
    if (token) start(token);
    else signOut('');
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();

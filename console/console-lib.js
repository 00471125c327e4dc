/* callpipe console, 1 of 4: the shared state, DOM helpers (text only), formatting and the API
 * client. The page's scripts share one namespace, window.callpipeConsole; each file adds its
 * functions to it and the next files take them from it (index.html loads them in order). */
'use strict';

(function (CP) {
  const TOKEN_KEY = 'callpipe.console.token';
  /* calls per page: 50, or /console?limit=N (1..200) */
  const PAGE_SIZE = (() => {
    const n = Number(new URLSearchParams(location.search).get('limit'));
    return Number.isInteger(n) && n >= 1 && n <= 200 ? n : 50;
  })();
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const STATUSES = ['completed', 'failed', 'in_progress'];
  const API_TIMEOUT_MS = 15000; // a read the server holds longer than this is given up

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
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), API_TIMEOUT_MS);
    let resp;
    let body = null;
    try {
      resp = await fetch(path + query(params || {}), {
        headers: {Authorization: `Bearer ${token}`, Accept: 'application/json'},
        cache: 'no-store',
        credentials: 'omit',
        signal: ctl.signal,
      });
      body = await resp.json();
    } catch (e) {
      if (!resp || ctl.signal.aborted) {
        clearTimeout(timer);
        throw new ApiError(0, ctl.signal.aborted ? 'The server did not answer in time.' : 'The server cannot be reached.');
      }
      body = null; // not JSON
    }
    clearTimeout(timer);
    if (resp.status === 401) {
      if (!(opts && opts.quiet401)) CP.signOut('The server refused the token (401). Sign in again.');
      throw new ApiError(401, 'The server refused this token.');
    }
    if (!resp.ok) {
      let msg = body && typeof body.error === 'string' ? body.error : `HTTP ${resp.status}`;
      if (resp.status === 503) msg = `The service is unavailable for now (${msg}); try again shortly.`;
      throw new ApiError(resp.status, msg, body && body.field);
    }
    return body;
  }

  Object.assign(CP, {$, TOKEN_KEY, PAGE_SIZE, STATUSES, state, el, svgEl, clear, showError, parseTime, fmtTime, fmtShortTime, fmtSeconds, fmtMs, fmtRate, statusLabel, callDuration, badge, api});
})((window.callpipeConsole = window.callpipeConsole || {}));

/* callpipe console, 4 of 4: sign-in and sign-out, routing (#calls, #call/<sid>, #drivers,
 * #overview), and the live event stream: GET /events read with fetch() and a ReadableStream
 * (EventSource cannot send the Authorization header), parsed as Server-Sent Events, resumed
 * with Last-Event-ID, re-synced when the server asks. */
'use strict';

(function (CP) {
  const {$, TOKEN_KEY, state, clear, showError, api, readCallFilters, loadCalls, loadMoreCalls,
    addCall, matchesFilters, renderCallsFooter, renderRow, updateRow, refreshDurations,
    closeDetail, openDetail, fetchDetail, renderDetail, renderTranscript, scheduleDetailRefetch,
    renderDriversHead, loadDrivers, loadOverview} = CP;

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
  const STREAM_SILENCE_MS = 45000; // three missed pings

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
        const opening = setTimeout(() => ctl.abort(), STREAM_SILENCE_MS); // no answer at all
        let resp;
        try {
          resp = await fetch('/events', {headers, signal: ctl.signal, cache: 'no-store', credentials: 'omit'});
        } finally {
          clearTimeout(opening);
        }
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
        await readSse(resp.body, gen, ctl);
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
   * data, id and event fields (https://html.spec.whatwg.org/#event-stream-interpretation). The
   * server writes at least ": ping" every 15 s: a connection silent for STREAM_SILENCE_MS is
   * taken for dead and aborted (ctl), so that the loop reconnects. */
  async function readSse(stream, gen, ctl) {
    const reader = stream.getReader();
    const dec = new TextDecoder();
    let buf = '';
    let ev = {type: '', data: [], id: null};
    let quiet = null;
    const watch = () => {
      clearTimeout(quiet);
      quiet = setTimeout(() => ctl.abort(), STREAM_SILENCE_MS);
    };
    try {
      for (watch(); ; watch()) {
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
    } finally {
      clearTimeout(quiet);
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
    let resizing = null;
    window.addEventListener('resize', () => {
      clearTimeout(resizing);
      resizing = setTimeout(CP.redrawOverview, 150);
    });
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

  Object.assign(CP, {signOut}); // for the API client's 401

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})((window.callpipeConsole = window.callpipeConsole || {}));

/* callpipe console, 3 of 4: the views: the calls table (filters, pages, live rows), a call's
 * detail and transcript, the drivers table, the overview. */
'use strict';

(function (CP) {
  const {$, PAGE_SIZE, STATUSES, state, el, clear, showError, parseTime, fmtTime, fmtSeconds, fmtMs,
    fmtRate, statusLabel, callDuration, badge, api, outcomeBar, overviewChart} = CP;

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
    /* lines already shown stay (a screen reader announces only the new ones), unless the
     * order changed: a line arrived that belongs before them */
    const shown = [...ol.children].map((li) => Number(li.getAttribute('data-seq')));
    const keep = shown.length <= seqs.length && shown.every((q, i) => q === seqs[i]) ? shown.length : 0;
    if (!keep) clear(ol);
    const who = (line) => String(line.speaker || '?');
    let prev = keep ? who(d.lines.get(seqs[keep - 1])) : null;
    for (const seq of seqs.slice(keep)) {
      const line = d.lines.get(seq);
      const speaker = who(line);
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

  /* ---------- overview ---------- */

  /* The chart is drawn for its box's width: again when that changes. */
  function redrawOverview() {
    const d = state.overviewData;
    const box = $('overview-chart');
    if (!d || state.view !== 'overview' || !box.firstChild) return;
    clear(box);
    box.appendChild(overviewChart(d.buckets, d.bucket, box.clientWidth));
  }

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
    state.overviewData = {buckets, bucket: body.bucket || bucket};
    box.appendChild(overviewChart(buckets, body.bucket || bucket, box.clientWidth));
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


  Object.assign(CP, {redrawOverview, readCallFilters, loadCalls, loadMoreCalls, addCall,
    matchesFilters, renderCallsFooter, renderRow, updateRow, refreshDurations, closeDetail,
    openDetail, fetchDetail, renderDetail, renderTranscript, scheduleDetailRefetch,
    renderDriversHead, loadDrivers, loadOverview});
})((window.callpipeConsole = window.callpipeConsole || {}));

/* callpipe console, 2 of 4: the inline SVG charts (a driver's outcome bar, the overview's
 * stacked columns), built with DOM calls; labels are SVG text nodes (textContent). */
'use strict';

(function (CP) {
  const {STATUSES, svgEl, parseTime, fmtTime, fmtShortTime, statusLabel} = CP;

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

  /* Stacked columns per bucket; axis labels as SVG text (textContent). width: the box's pixels,
   * so that the labels keep their size on a phone. */
  function overviewChart(buckets, bucket, width) {
    const W = Math.max(280, Math.round(width || 720));
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
    const every = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(plotW / 56)))); // a label per ~56 px
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

  Object.assign(CP, {outcomeBar, overviewChart});
})((window.callpipeConsole = window.callpipeConsole || {}));

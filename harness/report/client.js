// The report's browser code, inlined into report.html by harness/report/render.ts. It reads the model
// embedded as JSON (harness/report/model.ts), then draws the timeline on a canvas, the latency,
// throughput and clock charts with uPlot (also inlined), and a virtual history table, so a report of
// 100k ops stays fast. All charts share one time view: zooming one zooms them all.
/* global document, window, uPlot, requestAnimationFrame, Path2D */
(function () {
  'use strict';
  const D = JSON.parse(document.getElementById('faultline-data').textContent);
  const M = D.model;
  window.performance.mark('faultline-parsed');
  const TYPE_COLORS = ['#2e9e5b', '#d64545', '#e39b1b', '#9aa3ad'];
  const TYPE_NAMES = ['ok', 'fail', 'info', 'pending'];
  const HIST_TYPES = ['invoke', 'ok', 'fail', 'info'];
  const faultColor = (kind) => D.faultColors[kind] || D.faultColors.other;
  const anomalyOps = new Set(M.anomalyOps);

  function fmtSec(ms) {
    return (ms / 1000).toFixed(ms < 10000 ? 3 : ms < 100000 ? 2 : 1) + ' s';
  }
  function fmtDur(ms) {
    return ms < 1 ? (ms * 1000).toFixed(0) + ' µs' : ms < 1000 ? ms.toFixed(ms < 10 ? 2 : 1) + ' ms' : (ms / 1000).toFixed(2) + ' s';
  }
  function niceStep(span, target) {
    const raw = span / Math.max(1, target);
    const pow = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (m * pow >= raw) return m * pow;
    return 10 * pow;
  }
  function hexA(hex, a) {
    const n = parseInt(hex.slice(1), 16);
    return 'rgba(' + (n >> 16) + ',' + ((n >> 8) & 255) + ',' + (n & 255) + ',' + a + ')';
  }
  function histIndex(row) {
    return M.history.index ? M.history.index[row] : row;
  }
  // History index → table row, for jumping from anomaly links and timeline clicks.
  const rowOfIndex = new Map();
  if (M.history.index) M.history.index.forEach((idx, row) => rowOfIndex.set(idx, row));
  const rowOf = (idx) => (M.history.index ? rowOfIndex.get(idx) : idx < M.history.timeMs.length ? idx : undefined);

  // ---------------------------------------------------------------------------------------------
  // The shared time view (ms). Every chart registers a listener; `source` is skipped to avoid loops.
  // ---------------------------------------------------------------------------------------------
  const view = { min: 0, max: M.endMs };
  const viewListeners = [];
  let syncing = false;
  function setView(min, max, source) {
    if (syncing) return;
    const span = Math.max(max - min, 0.01);
    min = Math.max(0, Math.min(min, M.endMs - span));
    max = Math.min(M.endMs, min + span);
    view.min = min;
    view.max = max;
    syncing = true;
    try {
      for (const l of viewListeners) if (l !== source) l.apply(min, max);
    } finally {
      syncing = false;
    }
  }
  let selected = -1;
  const selectListeners = [];
  function select(idx) {
    selected = idx;
    for (const l of selectListeners) l(idx);
  }

  // ---------------------------------------------------------------------------------------------
  // Timeline: one lane per worker (a process and its successors after info), plus the nemesis lane.
  // ---------------------------------------------------------------------------------------------
  const tlCanvas = document.getElementById('tl-canvas');
  const tooltip = document.getElementById('tl-tip');
  const ops = M.ops;
  const GUTTER = 118;
  const AXIS_H = 22;
  const NEM_H = 26;
  const laneH = M.lanes.length <= 24 ? 16 : Math.max(4, Math.min(12, Math.floor(560 / M.lanes.length)));
  const tlHeight = AXIS_H + NEM_H + M.lanes.length * laneH + 6;
  const barOf = new Map();
  for (let i = 0; i < ops.invoke.length; i++) {
    barOf.set(ops.invoke[i], i);
    if (ops.done[i] >= 0) barOf.set(ops.done[i], i);
  }
  let tlWidth = 0;
  let drag = null;

  function xOf(ms) {
    return GUTTER + ((ms - view.min) / (view.max - view.min)) * (tlWidth - GUTTER - 8);
  }
  function msOf(x) {
    return view.min + ((x - GUTTER) / (tlWidth - GUTTER - 8)) * (view.max - view.min);
  }
  // First op of a lane whose end is at or after ms; a lane's ops never overlap, so ends are sorted.
  function firstVisible(lane, ms) {
    let lo = ops.laneStart[lane];
    let hi = ops.laneStart[lane + 1];
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ops.endMs[mid] < ms) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  function drawTimeline() {
    const dpr = window.devicePixelRatio || 1;
    tlWidth = tlCanvas.parentElement.clientWidth;
    tlCanvas.width = Math.round(tlWidth * dpr);
    tlCanvas.height = Math.round(tlHeight * dpr);
    tlCanvas.style.height = tlHeight + 'px';
    const ctx = tlCanvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, tlWidth, tlHeight);
    const top = AXIS_H + NEM_H;
    for (let l = 0; l < M.lanes.length; l++) {
      if (l % 2) {
        ctx.fillStyle = '#f7f9fb';
        ctx.fillRect(GUTTER, top + l * laneH, tlWidth - GUTTER, laneH);
      }
    }
    ctx.save();
    ctx.beginPath();
    ctx.rect(GUTTER, 0, tlWidth - GUTTER, tlHeight);
    ctx.clip();
    // Fault windows shade every lane, so a reader sees which ops ran during which fault.
    for (const w of M.windows) {
      const x0 = xOf(w.startMs);
      const x1 = Math.max(x0 + 2, xOf(w.endMs));
      ctx.fillStyle = hexA(faultColor(w.kind), 0.85);
      ctx.fillRect(x0, AXIS_H + 3, x1 - x0, NEM_H - 12);
      ctx.fillStyle = '#fff';
      ctx.font = '11px system-ui, sans-serif';
      if (x1 - x0 > 40) {
        // Clip the label to its window rather than squeezing it.
        ctx.save();
        ctx.beginPath();
        ctx.rect(x0, AXIS_H, x1 - x0 - 4, NEM_H);
        ctx.clip();
        ctx.fillText(w.label, Math.max(x0, GUTTER) + 4, AXIS_H + 14);
        ctx.restore();
      }
    }
    // Nemesis ops themselves, from invoke to completion, as ticks under the windows.
    for (const e of M.nemesis) {
      const x0 = xOf(e.invokeMs);
      const x1 = Math.max(x0 + 2, xOf(e.timeMs));
      ctx.fillStyle = e.error ? TYPE_COLORS[1] : '#39424e';
      ctx.fillRect(x0, AXIS_H + NEM_H - 8, x1 - x0, 5);
    }
    // Client ops, batched into one path per outcome so 100k bars are four fills.
    const paths = [new Path2D(), new Path2D(), new Path2D(), new Path2D()];
    const marks = [];
    const pxPerMs = (tlWidth - GUTTER - 8) / (view.max - view.min);
    const barH = Math.max(2, laneH - (laneH > 8 ? 4 : 1));
    for (let l = 0; l < M.lanes.length; l++) {
      const y = top + l * laneH + (laneH - barH) / 2;
      const end = ops.laneStart[l + 1];
      let lastX = -1;
      for (let i = firstVisible(l, view.min); i < end && ops.startMs[i] <= view.max; i++) {
        const x0 = GUTTER + (ops.startMs[i] - view.min) * pxPerMs;
        const w = Math.max(1, (ops.endMs[i] - ops.startMs[i]) * pxPerMs);
        // Bars that fall in an already-painted pixel add nothing but cost; skip them unless they failed.
        if (x0 + w < lastX + 0.5 && ops.type[i] === 0) continue;
        paths[ops.type[i]].rect(x0, y, w, barH);
        lastX = x0 + w;
        if (anomalyOps.has(ops.invoke[i]) || anomalyOps.has(ops.done[i])) marks.push([x0, y, w]);
      }
    }
    for (let t = 0; t < 4; t++) {
      ctx.fillStyle = TYPE_COLORS[t];
      ctx.fill(paths[t]);
    }
    // Fault windows tint every lane on top of the bars, with edges, so they show even when bars are dense.
    for (const w of M.windows) {
      const x0 = xOf(w.startMs);
      const x1 = Math.max(x0 + 2, xOf(w.endMs));
      ctx.fillStyle = hexA(faultColor(w.kind), 0.16);
      ctx.fillRect(x0, top, x1 - x0, tlHeight - top);
      ctx.fillStyle = hexA(faultColor(w.kind), 0.9);
      ctx.fillRect(x0 - 0.5, AXIS_H, 1, tlHeight - AXIS_H);
      ctx.fillRect(x1 - 0.5, AXIS_H, 1, tlHeight - AXIS_H);
    }
    ctx.strokeStyle = '#b00020';
    ctx.lineWidth = 1.5;
    for (const [x, y, w] of marks) ctx.strokeRect(x - 1, y - 1, w + 2, barH + 2);
    if (selected >= 0) {
      const b = barOf.get(selected);
      const h = M.history;
      const row = rowOf(selected);
      const ms = b !== undefined ? ops.startMs[b] : row !== undefined ? h.timeMs[row] : -1;
      if (ms >= 0) {
        ctx.strokeStyle = '#1d2430';
        ctx.setLineDash([4, 3]);
        ctx.beginPath();
        ctx.moveTo(xOf(ms), AXIS_H);
        ctx.lineTo(xOf(ms), tlHeight);
        ctx.stroke();
        ctx.setLineDash([]);
        if (b !== undefined) {
          ctx.lineWidth = 2;
          ctx.strokeRect(xOf(ops.startMs[b]) - 2, top + ops.lane[b] * laneH - 1, Math.max(1, xOf(ops.endMs[b]) - xOf(ops.startMs[b])) + 4, laneH + 2);
        }
      }
    }
    if (drag && drag.mode === 'select') {
      ctx.fillStyle = 'rgba(43,108,214,.15)';
      ctx.fillRect(Math.min(drag.x0, drag.x1), AXIS_H, Math.abs(drag.x1 - drag.x0), tlHeight - AXIS_H);
    }
    ctx.restore();
    // Axis: seconds since the run started.
    ctx.fillStyle = '#5f6b7a';
    ctx.strokeStyle = '#e3e7ed';
    ctx.font = '11px system-ui, sans-serif';
    ctx.lineWidth = 1;
    const step = niceStep(view.max - view.min, Math.max(2, (tlWidth - GUTTER) / 110));
    for (let t = Math.ceil(view.min / step) * step; t <= view.max; t += step) {
      const x = Math.round(xOf(t)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, AXIS_H - 4);
      ctx.lineTo(x, tlHeight);
      ctx.stroke();
      ctx.fillText(fmtSec(t), x + 3, 13);
    }
    // Lane labels.
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, GUTTER, tlHeight);
    ctx.fillStyle = '#1d2430';
    ctx.font = '600 11px system-ui, sans-serif';
    ctx.fillText('nemesis', 8, AXIS_H + 16);
    ctx.font = '11px system-ui, sans-serif';
    const labelEvery = Math.ceil(12 / laneH);
    for (let l = 0; l < M.lanes.length; l += labelEvery) ctx.fillText(M.lanes[l].label, 8, top + l * laneH + laneH / 2 + 4, GUTTER - 12);
    ctx.strokeStyle = '#cfd6df';
    ctx.beginPath();
    ctx.moveTo(GUTTER - 0.5, 0);
    ctx.lineTo(GUTTER - 0.5, tlHeight);
    ctx.moveTo(0, top - 0.5);
    ctx.lineTo(tlWidth, top - 0.5);
    ctx.stroke();
    document.getElementById('tl-range').textContent = fmtSec(view.min) + ' – ' + fmtSec(view.max) + ' of ' + fmtSec(M.endMs);
  }

  let tlPending = false;
  function scheduleTimeline() {
    if (tlPending) return;
    tlPending = true;
    requestAnimationFrame(() => {
      tlPending = false;
      drawTimeline();
    });
  }
  viewListeners.push({ apply: scheduleTimeline });
  selectListeners.push(scheduleTimeline);

  function opAt(x, y) {
    const top = AXIS_H + NEM_H;
    const ms = msOf(x);
    const slack = (view.max - view.min) * (3 / (tlWidth - GUTTER));
    if (y >= AXIS_H && y < top) {
      for (const e of M.nemesis) if (ms >= e.invokeMs - slack && ms <= e.timeMs + slack) return { nemesis: e };
      for (const w of M.windows) if (ms >= w.startMs && ms <= w.endMs) return { window: w };
      return null;
    }
    const lane = Math.floor((y - top) / laneH);
    if (lane < 0 || lane >= M.lanes.length) return null;
    const i = firstVisible(lane, ms - slack);
    if (i < ops.laneStart[lane + 1] && ops.startMs[i] <= ms + slack) return { bar: i };
    return null;
  }
  function describeBar(i) {
    const h = M.history;
    const row = rowOf(ops.invoke[i]);
    const done = ops.done[i] >= 0 ? rowOf(ops.done[i]) : undefined;
    const v = done !== undefined ? h.value[done] : row !== undefined ? h.value[row] : '';
    const err = done !== undefined && h.error[done] ? '\n' + h.error[done] : '';
    const lat = ops.done[i] >= 0 ? fmtDur(ops.endMs[i] - ops.startMs[i]) : 'no completion';
    const proc = row !== undefined ? h.process[row] : '?';
    return 'op ' + ops.invoke[i] + ' · p' + proc + ' ' + M.lanes[ops.lane[i]].node + ' · ' + M.fs[ops.f[i]] + ' ' + TYPE_NAMES[ops.type[i]] + ' · ' + lat + ' at ' + fmtSec(ops.startMs[i]) + '\n' + v.slice(0, 300) + err;
  }
  tlCanvas.addEventListener('mousemove', (ev) => {
    const r = tlCanvas.getBoundingClientRect();
    const x = ev.clientX - r.left;
    const y = ev.clientY - r.top;
    if (drag) {
      drag.x1 = x;
      if (drag.mode === 'pan') {
        const dms = ((drag.x0 - x) / (tlWidth - GUTTER - 8)) * (drag.max - drag.min);
        setView(drag.min + dms, drag.max + dms, null);
      } else scheduleTimeline();
      return;
    }
    const hit = x > GUTTER ? opAt(x, y) : null;
    if (!hit) {
      tooltip.style.display = 'none';
      return;
    }
    tooltip.textContent = hit.bar !== undefined
      ? describeBar(hit.bar)
      : hit.nemesis
        ? 'op ' + hit.nemesis.index + ' · nemesis ' + hit.nemesis.f + ' at ' + fmtSec(hit.nemesis.timeMs) + (hit.nemesis.summary ? '\n' + hit.nemesis.summary : '') + (hit.nemesis.error ? '\n' + hit.nemesis.error : '')
        : hit.window.label + '\n' + fmtSec(hit.window.startMs) + ' – ' + fmtSec(hit.window.endMs) + (hit.window.error ? '\n' + hit.window.error : '');
    tooltip.style.display = 'block';
    const left = Math.min(x + 14, tlWidth - tooltip.offsetWidth - 4);
    tooltip.style.left = left + 'px';
    tooltip.style.top = y + 16 + 'px';
  });
  tlCanvas.addEventListener('mouseleave', () => {
    tooltip.style.display = 'none';
  });
  tlCanvas.addEventListener('mousedown', (ev) => {
    const r = tlCanvas.getBoundingClientRect();
    const x = ev.clientX - r.left;
    drag = { mode: ev.shiftKey ? 'pan' : 'select', x0: x, x1: x, min: view.min, max: view.max };
    ev.preventDefault();
  });
  window.addEventListener('mouseup', (ev) => {
    if (!drag) return;
    const d = drag;
    drag = null;
    if (d.mode === 'select' && Math.abs(d.x1 - d.x0) > 4) {
      const a = msOf(Math.max(GUTTER, Math.min(d.x0, d.x1)));
      const b = msOf(Math.max(d.x0, d.x1));
      setView(a, b, null);
    } else if (Math.abs(d.x1 - d.x0) <= 4) {
      const r = tlCanvas.getBoundingClientRect();
      const hit = opAt(ev.clientX - r.left, ev.clientY - r.top);
      if (hit && hit.bar !== undefined) goToOp(ops.invoke[hit.bar], false);
      else if (hit && hit.nemesis) goToOp(hit.nemesis.index, false);
      scheduleTimeline();
    } else scheduleTimeline();
  });
  tlCanvas.addEventListener('dblclick', () => setView(0, M.endMs, null));
  function zoom(factor) {
    const mid = (view.min + view.max) / 2;
    const half = ((view.max - view.min) * factor) / 2;
    setView(mid - half, mid + half, null);
  }
  function pan(fraction) {
    const d = (view.max - view.min) * fraction;
    setView(view.min + d, view.max + d, null);
  }
  document.getElementById('tl-in').onclick = () => zoom(0.5);
  document.getElementById('tl-out').onclick = () => zoom(2);
  document.getElementById('tl-left').onclick = () => pan(-0.5);
  document.getElementById('tl-right').onclick = () => pan(0.5);
  document.getElementById('tl-reset').onclick = () => setView(0, M.endMs, null);

  // ---------------------------------------------------------------------------------------------
  // Charts (uPlot), shaded by the same fault windows and zoom-linked to the timeline.
  // ---------------------------------------------------------------------------------------------
  const charts = [];
  function shadePlugin() {
    return {
      hooks: {
        drawClear: [
          (u) => {
            const ctx = u.ctx;
            ctx.save();
            for (const w of M.windows) {
              const x0 = u.valToPos(w.startMs / 1000, 'x', true);
              const x1 = u.valToPos(w.endMs / 1000, 'x', true);
              const l = Math.max(u.bbox.left, x0);
              const r = Math.min(u.bbox.left + u.bbox.width, Math.max(x1, x0 + 2));
              if (r <= l) continue;
              ctx.fillStyle = hexA(faultColor(w.kind), 0.12);
              ctx.fillRect(l, u.bbox.top, r - l, u.bbox.height);
            }
            ctx.restore();
          },
        ],
      },
    };
  }
  function chartWidth(el) {
    return Math.max(300, el.clientWidth);
  }
  function makeChart(id, opts, data) {
    const el = document.getElementById(id);
    if (!el) return null;
    const u = new uPlot(
      Object.assign(
        {
          width: chartWidth(el),
          height: 260,
          plugins: [shadePlugin()],
          cursor: { drag: { x: true, y: false, setScale: true } },
          hooks: {
            setScale: [
              (self, key) => {
                if (key !== 'x' || syncing) return;
                const min = self.scales.x.min;
                const max = self.scales.x.max;
                if (min == null || max == null) return;
                setView(min * 1000, max * 1000, listener);
              },
            ],
          },
        },
        opts,
        { scales: Object.assign({ x: { time: false } }, opts.scales || {}) },
      ),
      data,
      el,
    );
    const listener = {
      apply(min, max) {
        u.setScale('x', { min: min / 1000, max: max / 1000 });
      },
    };
    viewListeners.push(listener);
    charts.push({ u, el });
    return u;
  }
  const secAxis = { label: 'seconds since start', values: (u, vals) => vals.map((v) => +v.toFixed(3)) };

  // Latency scatter: every completed op at its invoke time, coloured by outcome, plus quantile lines.
  (function latencyChart() {
    const n = ops.startMs.length;
    const order = new Int32Array(n);
    let m = 0;
    for (let i = 0; i < n; i++) if (ops.type[i] !== 3) order[m++] = i;
    const sorted = Array.from(order.subarray(0, m)).sort((a, b) => ops.startMs[a] - ops.startMs[b]);
    const B = M.buckets;
    const len = sorted.length + B.t.length;
    const x = new Array(len);
    const ys = [new Array(len).fill(null), new Array(len).fill(null), new Array(len).fill(null)];
    const qs = [new Array(len).fill(null), new Array(len).fill(null), new Array(len).fill(null)];
    // Merge op points and bucket midpoints into one sorted x array, as uPlot wants aligned data.
    let a = 0;
    let b = 0;
    for (let k = 0; k < len; k++) {
      const opMs = a < sorted.length ? ops.startMs[sorted[a]] : Infinity;
      const bMs = b < B.t.length ? B.t[b] + B.widthMs / 2 : Infinity;
      if (opMs <= bMs) {
        const i = sorted[a++];
        x[k] = opMs / 1000;
        ys[ops.type[i]][k] = Math.max(0.001, ops.endMs[i] - ops.startMs[i]);
      } else {
        x[k] = bMs / 1000;
        qs[0][k] = B.p50[b];
        qs[1][k] = B.p95[b];
        qs[2][k] = B.p99[b];
        b++;
      }
    }
    // uPlot draws points as arcs, which takes seconds for 100k ops; small squares drawn straight onto
    // the canvas look the same at this size and take milliseconds.
    const squares = (color) => (u, si, i0, i1) => {
      const ctx = u.ctx;
      const xs = u.data[0];
      const ys2 = u.data[si];
      const size = 3 * (window.devicePixelRatio || 1);
      ctx.save();
      ctx.beginPath();
      ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
      ctx.clip();
      ctx.fillStyle = hexA(color, 0.55);
      for (let i = i0; i <= i1; i++) {
        const y = ys2[i];
        if (y == null) continue;
        ctx.fillRect(u.valToPos(xs[i], 'x', true) - size / 2, u.valToPos(y, 'y', true) - size / 2, size, size);
      }
      ctx.restore();
      return null;
    };
    // Quantile lines join bucket midpoints, and break where a bucket had no ok op, so an outage
    // shows as a gap rather than a straight line across it.
    const isBucket = new Array(len).fill(false);
    for (let k = 0; k < len; k++) if (qs[0][k] !== null || (ys[0][k] === null && ys[1][k] === null && ys[2][k] === null)) isBucket[k] = true;
    const quantileLine = (u, si, i0, i1) => {
      const ctx = u.ctx;
      const s = u.series[si];
      ctx.save();
      ctx.beginPath();
      ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
      ctx.clip();
      ctx.strokeStyle = s.stroke();
      ctx.lineWidth = 1.5 * (window.devicePixelRatio || 1);
      ctx.beginPath();
      let pen = false;
      for (let i = Math.max(0, i0 - 1); i <= Math.min(len - 1, i1 + 1); i++) {
        if (!isBucket[i]) continue;
        const y = u.data[si][i];
        if (y == null) {
          pen = false;
          continue;
        }
        const px = u.valToPos(u.data[0][i], 'x', true);
        const py = u.valToPos(y, 'y', true);
        if (pen) ctx.lineTo(px, py);
        else ctx.moveTo(px, py);
        pen = true;
      }
      ctx.stroke();
      ctx.restore();
      return null;
    };
    const scatter = (i) => ({ label: TYPE_NAMES[i], stroke: TYPE_COLORS[i], width: 3, paths: squares(TYPE_COLORS[i]), points: { show: false } });
    makeChart(
      'lat-chart',
      {
        // Log latency, padded so points at the edges (timeouts) are not cut in half.
        scales: { y: { distr: 3, range: (u, min, max) => [Math.max(0.001, (min || 0.1) / 2), Math.max(1, (max || 1) * 2)] } },
        axes: [secAxis, { label: 'latency (ms)', size: 60 }],
        series: [
          { label: 't (s)' },
          scatter(0),
          scatter(1),
          scatter(2),
          { label: 'p50 ok', stroke: '#1d2430', width: 1.5, paths: quantileLine, points: { show: false } },
          { label: 'p95 ok', stroke: '#6b4bd6', width: 1.5, paths: quantileLine, points: { show: false } },
          { label: 'p99 ok', stroke: '#c02c6b', width: 1.5, paths: quantileLine, points: { show: false } },
        ],
      },
      [x, ys[0], ys[1], ys[2], qs[0], qs[1], qs[2]],
    );
  })();

  // Throughput per outcome and availability (ok / all completions) per bucket.
  (function throughputChart() {
    const B = M.buckets;
    const x = B.t.map((t) => t / 1000);
    const stepped = uPlot.paths && uPlot.paths.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined;
    makeChart(
      'thr-chart',
      {
        scales: { pct: { range: [0, 100] } },
        axes: [secAxis, { label: 'ops/s', size: 60 }, { scale: 'pct', side: 1, label: 'availability %', grid: { show: false }, size: 50 }],
        series: [
          { label: 't (s)' },
          { label: 'ok/s', stroke: TYPE_COLORS[0], fill: hexA(TYPE_COLORS[0], 0.08), width: 1.5, paths: stepped },
          { label: 'fail/s', stroke: TYPE_COLORS[1], width: 1.5, paths: stepped },
          { label: 'info/s', stroke: TYPE_COLORS[2], width: 1.5, paths: stepped },
          { label: 'availability', scale: 'pct', stroke: '#2b6cd6', width: 1.5, dash: [5, 3], spanGaps: false },
        ],
      },
      [x, B.ok, B.fail, B.info, B.availability],
    );
  })();

  // Clock offsets per node, as the nemesis reported them (a step function).
  if (M.clock) {
    const C = M.clock;
    const palette = ['#2b6cd6', '#d64545', '#2e9e5b', '#b07d00', '#7b5cd6', '#16a3a3', '#c02c6b', '#5f6b7a', '#8a5a00'];
    const stepped = uPlot.paths && uPlot.paths.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined;
    makeChart(
      'clock-chart',
      {
        height: 220,
        axes: [secAxis, { label: 'offset (ms)', size: 70 }],
        series: [{ label: 't (s)' }].concat(C.nodes.map((n, i) => ({ label: n, stroke: palette[i % palette.length], width: 2, paths: stepped }))),
      },
      [C.t.map((t) => t / 1000)].concat(C.offsets),
    );
  }

  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    window.clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(() => {
      for (const c of charts) c.u.setSize({ width: chartWidth(c.el), height: c.u.height });
      scheduleTimeline();
    }, 120);
  });

  window.performance.mark('faultline-charts');

  // ---------------------------------------------------------------------------------------------
  // History table: filters build a list of matching rows; only the rows in view exist in the DOM.
  // ---------------------------------------------------------------------------------------------
  const H = M.history;
  const total = H.timeMs.length;
  const ROW_H = 22;
  const body = document.getElementById('hist-body');
  const spacer = document.getElementById('hist-spacer');
  const countEl = document.getElementById('hist-count');
  const fProc = document.getElementById('flt-process');
  const fNode = document.getElementById('flt-node');
  const fF = document.getElementById('flt-f');
  const fType = document.getElementById('flt-type');
  const fText = document.getElementById('flt-text');
  const fAnom = document.getElementById('flt-anom');
  function addOptions(sel, values) {
    for (const [value, label] of values) {
      const o = document.createElement('option');
      o.value = value;
      o.textContent = label;
      sel.appendChild(o);
    }
  }
  const procs = new Set();
  for (let r = 0; r < total; r++) procs.add(H.process[r]);
  addOptions(fProc, [...procs].sort((a, b) => a - b).map((p) => [String(p), p < 0 ? 'nemesis' : 'p' + p]));
  addOptions(fNode, M.nodes.map((n, i) => [String(i), n]));
  addOptions(fF, M.fs.map((f, i) => [String(i), f]).sort((a, b) => a[1].localeCompare(b[1])));
  addOptions(fType, HIST_TYPES.map((t, i) => [String(i), t]));

  let rows = new Int32Array(0);
  function applyFilters() {
    const p = fProc.value === '' ? null : +fProc.value;
    const n = fNode.value === '' ? null : +fNode.value;
    const f = fF.value === '' ? null : +fF.value;
    const t = fType.value === '' ? null : +fType.value;
    const text = fText.value.trim().toLowerCase();
    const onlyAnom = fAnom.checked;
    const out = new Int32Array(total);
    let m = 0;
    for (let r = 0; r < total; r++) {
      if (p !== null && H.process[r] !== p) continue;
      if (n !== null && H.node[r] !== n) continue;
      if (f !== null && H.f[r] !== f) continue;
      if (t !== null && H.type[r] !== t) continue;
      if (onlyAnom && !anomalyOps.has(histIndex(r))) continue;
      if (text && H.value[r].toLowerCase().indexOf(text) < 0 && !(H.error[r] && String(H.error[r]).toLowerCase().indexOf(text) >= 0)) continue;
      out[m++] = r;
    }
    rows = out.subarray(0, m);
    countEl.textContent = m === total ? total + ' ops' : m + ' of ' + total + ' ops';
    spacer.style.height = m * ROW_H + 'px';
    // A shorter list can leave the view scrolled past its end (e.g. after jumping to an op far down);
    // clamp now, because the browser's own clamp fires its scroll event only after this render.
    const maxTop = Math.max(0, m * ROW_H - body.clientHeight);
    if (body.scrollTop > maxTop) body.scrollTop = maxTop;
    renderRows(true);
  }
  const pool = [];
  function rowEl(k) {
    if (!pool[k]) {
      const el = document.createElement('div');
      el.className = 'row';
      for (let c = 0; c < 8; c++) el.appendChild(document.createElement('span'));
      el.addEventListener('click', () => goToOp(+el.dataset.idx, false));
      body.appendChild(el);
      pool[k] = el;
    }
    return pool[k];
  }
  let lastFirst = -1;
  function renderRows(force) {
    const first = Math.max(0, Math.floor(body.scrollTop / ROW_H) - 5);
    if (!force && first === lastFirst) return;
    lastFirst = first;
    const count = Math.ceil(body.clientHeight / ROW_H) + 10;
    for (let k = 0; k < count; k++) {
      const el = rowEl(k);
      const j = first + k;
      if (j >= rows.length) {
        el.style.display = 'none';
        continue;
      }
      const r = rows[j];
      const idx = histIndex(r);
      el.style.display = '';
      el.style.top = j * ROW_H + 'px';
      el.dataset.idx = idx;
      el.className = 'row' + (idx === selected ? ' sel' : '') + (anomalyOps.has(idx) ? ' anom' : '');
      const c = el.children;
      c[0].textContent = idx;
      c[1].textContent = (H.timeMs[r] / 1000).toFixed(6);
      c[2].textContent = H.process[r] < 0 ? 'nemesis' : H.process[r];
      c[3].textContent = H.node[r] < 0 ? '' : M.nodes[H.node[r]];
      c[4].textContent = HIST_TYPES[H.type[r]];
      c[4].className = 't-' + HIST_TYPES[H.type[r]];
      c[5].textContent = M.fs[H.f[r]];
      c[6].textContent = H.value[r];
      c[6].title = H.value[r];
      c[7].textContent = H.error[r] || '';
      c[7].className = 't-err';
      c[7].title = H.error[r] || '';
    }
  }
  body.addEventListener('scroll', () => renderRows(false));
  for (const el of [fProc, fNode, fF, fType, fAnom]) el.addEventListener('change', applyFilters);
  let textTimer = 0;
  fText.addEventListener('input', () => {
    window.clearTimeout(textTimer);
    textTimer = window.setTimeout(applyFilters, 200);
  });
  document.getElementById('flt-clear').onclick = () => {
    fProc.value = fNode.value = fF.value = fType.value = fText.value = '';
    fAnom.checked = false;
    applyFilters();
  };

  // The selected op's full row and its invoke/completion partner.
  const detail = document.getElementById('op-detail');
  function showDetail(idx) {
    const r = rowOf(idx);
    if (r === undefined) {
      detail.style.display = 'block';
      detail.textContent = 'op ' + idx + ' is not in this history';
      return;
    }
    const b = barOf.get(idx);
    const lines = [];
    const describe = (row) => {
      const i = histIndex(row);
      return 'op ' + i + ' · t=' + (H.timeMs[row] / 1000).toFixed(6) + ' s · ' + (H.process[row] < 0 ? 'nemesis' : 'p' + H.process[row]) +
        (H.node[row] >= 0 ? ' · ' + M.nodes[H.node[row]] : '') + ' · ' + HIST_TYPES[H.type[row]] + ' ' + M.fs[H.f[row]] +
        '\n' + H.value[row] + (H.error[row] ? '\nerror: ' + H.error[row] : '');
    };
    if (b !== undefined) {
      lines.push(describe(rowOf(ops.invoke[b])));
      if (ops.done[b] >= 0) lines.push(describe(rowOf(ops.done[b])));
      lines.push('latency: ' + (ops.done[b] >= 0 ? fmtDur(ops.endMs[b] - ops.startMs[b]) : 'no completion in the history'));
    } else lines.push(describe(r));
    detail.innerHTML = '';
    const h = document.createElement('b');
    h.textContent = 'Selected op ' + idx + (anomalyOps.has(idx) ? ' (named by an anomaly)' : '');
    const pre = document.createElement('pre');
    pre.textContent = lines.join('\n\n');
    detail.appendChild(h);
    detail.appendChild(pre);
    detail.style.display = 'block';
  }

  // Selects an op everywhere: table row scrolled into view, timeline marker, detail panel.
  function goToOp(idx, scrollPage) {
    select(idx);
    let j = indexInRows(idx);
    if (j < 0) {
      document.getElementById('flt-clear').onclick();
      j = indexInRows(idx);
    }
    const inView = j * ROW_H >= body.scrollTop && (j + 1) * ROW_H <= body.scrollTop + body.clientHeight;
    if (j >= 0 && !inView) body.scrollTop = Math.max(0, j * ROW_H - body.clientHeight / 2);
    renderRows(true);
    showDetail(idx);
    const b = barOf.get(idx);
    if (b !== undefined && (ops.startMs[b] < view.min || ops.endMs[b] > view.max)) {
      const span = view.max - view.min;
      setView(ops.startMs[b] - span / 2, ops.startMs[b] + span / 2, null);
    }
    if (scrollPage) document.getElementById('history').scrollIntoView();
  }
  function indexInRows(idx) {
    const r = rowOf(idx);
    if (r === undefined) return -1;
    let lo = 0;
    let hi = rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (rows[mid] < r) lo = mid + 1;
      else hi = mid;
    }
    return lo < rows.length && rows[lo] === r ? lo : -1;
  }
  function onHash() {
    const m = /^#op-(\d+)$/.exec(window.location.hash);
    if (m) goToOp(+m[1], true);
  }
  window.addEventListener('hashchange', onHash);

  applyFilters();
  drawTimeline();
  // The benchmark and the browser test wait for this mark: the timeline, charts and table are drawn.
  window.performance.mark('faultline-rendered');
  document.body.dataset.rendered = 'true';
  onHash();
})();

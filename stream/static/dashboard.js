// neurogrs live page: polls api/state and draws three uPlot charts. No network beyond
// this server (uPlot is vendored next to this file).
"use strict";
(function () {
  const params = new URLSearchParams(location.search);
  const WINDOW_S = Math.max(5, Number(params.get("window")) || 60); // seconds on screen
  const POLL_MS = 250;
  const MAX_POINTS = 20000; // kept in the page
  const MAX_CLASSES = 8; // probability lines drawn (the first ones)
  const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"];
  const $ = (id) => document.getElementById(id);

  let cursor = 0, updates = 0, plots = null, classes = null;
  let points = []; // [t, e2e_ms, service_ms, seq, label, true_label, late, probs]
  let deadlineMs = null;

  const width = () => Math.max(320, document.documentElement.clientWidth - 70);
  const opts = (series, scales, axes, height) => ({
    width: width(), height: height || 200, series: [{}, ...series], scales: { x: { time: true }, ...scales },
    axes: [{}, ...axes], legend: { live: true }, cursor: { drag: { x: true, y: false } },
  });

  function makePlots(names) {
    classes = names.slice(0, MAX_CLASSES);
    for (const id of ["plot-latency", "plot-rate", "plot-prediction"]) $(id).textContent = "";
    const step = uPlot.paths.stepped({ align: 1 });
    const latency = new uPlot(opts([
      { label: "end to end (t_src → received)", stroke: "#1f77b4", width: 1, points: { show: false } },
      { label: "in the service (receipt → publish)", stroke: "#2ca02c", width: 1, points: { show: false } },
      { label: "deadline", stroke: "#d62728", width: 1, dash: [6, 4], points: { show: false } },
    ], { y: { distr: 3 } }, [{ label: "ms (log scale)" }]),
    [[], [], [], []], $("plot-latency"));
    const rate = new uPlot(opts([
      { label: "predictions/s", stroke: "#1f77b4", width: 2, paths: step, points: { show: false } },
      { label: "skipped/s (conflated)", stroke: "#ff7f0e", width: 1, paths: step, points: { show: false } },
      { label: "errors/s", stroke: "#d62728", width: 1, paths: step, points: { show: false } },
    ], { y: { range: (u, lo, hi) => [0, Math.max(hi, 1) * 1.1] } }, [{ label: "per second" }], 160),
    [[], [], [], []], $("plot-rate"));
    const labelAxis = (u, vals) => vals.map((v) => (Number.isInteger(v) && v >= 0 && v < names.length ? names[v] : ""));
    const prediction = new uPlot(opts([
      ...classes.map((c, i) => ({ label: `P(${c})`, stroke: COLORS[i % COLORS.length], width: 1, scale: "p", points: { show: false } })),
      { label: "true label", stroke: "#000", width: 2, scale: "label", paths: step, points: { show: false } },
      { label: "predicted label", stroke: "#aaa", width: 1, scale: "label", paths: step, points: { show: false } },
    ], { p: { range: [0, 1] }, label: { range: [-0.5, names.length - 0.5] } },
    [{ scale: "p", label: "probability" },
     { scale: "label", side: 1, grid: { show: false }, values: labelAxis, incrs: [1], label: "label" }], 240),
    [[], ...classes.map(() => []), [], []], $("plot-prediction"));
    plots = { latency, rate, prediction };
  }

  function quantile(sorted, q) {
    if (!sorted.length) return null;
    return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  }

  function draw(state) {
    const t = [], e2e = [], svc = [], dl = [], probs = classes.map(() => []), truth = [], pred = [];
    for (const p of points) {
      // log scale: a latency of 0 (clock granularity) is drawn at 1 us
      t.push(p[0]); e2e.push(Math.max(p[1], 1e-3)); svc.push(Math.max(p[2], 1e-3)); dl.push(deadlineMs);
      classes.forEach((_, i) => probs[i].push(p[7][i] ?? null));
      truth.push(p[5]); pred.push(p[4]);
    }
    plots.latency.setData([t, e2e, svc, dl]);
    plots.prediction.setData([t, ...probs, truth, pred]);
    const bins = state.rate.slice(0, -1).filter((b) => !t.length || b[0] >= t[0] - 1); // the last second is still filling
    plots.rate.setData([bins.map((b) => b[0]), bins.map((b) => b[1]), bins.map((b) => b[2]), bins.map((b) => b[3])]);
    const sorted = e2e.slice().sort((a, b) => a - b);
    if (sorted.length) $("latency").textContent = `${quantile(sorted, 0.5).toFixed(2)} / ${quantile(sorted, 0.99).toFixed(2)} ms`;
    if (bins.length) $("fps").textContent = String(bins[bins.length - 1][1]);
    updates += 1;
    $("n-updates").textContent = String(updates);
    $("n-plotted").textContent = String(t.length);
    document.body.dataset.updates = String(updates);
    document.body.dataset.plotted = String(t.length);
  }

  function show(state) {
    const c = state.counts, h = state.hello;
    $("n-predictions").textContent = String(c.predictions);
    if (!("firstPredictions" in document.body.dataset)) document.body.dataset.firstPredictions = String(c.predictions);
    document.body.dataset.predictions = String(c.predictions);
    $("n-late").textContent = String(c.late);
    $("n-skipped").textContent = String(c.skipped);
    const errs = Object.entries(c.errors);
    $("n-errors").textContent = errs.length ? errs.map(([k, v]) => `${v} ${k}`).join(", ") : "0";
    $("accuracy").textContent = c.scored ? `${(100 * c.correct / c.scored).toFixed(1)} % of ${c.scored}` : (state.labels_known ? "–" : "no labels (dashboard --session FILE)");
    if (h) {
      $("model").textContent = h.model.slice(0, 12);
      $("engine").textContent = h.engine;
      $("deadline").textContent = `${h.deadline_ms} ms`;
      deadlineMs = h.deadline_ms;
    }
    const last = points.length ? points[points.length - 1][0] : null;
    const status = $("status");
    if (!h && !last) { status.className = "waiting"; status.textContent = "waiting for the service…"; }
    else if (!last || Date.now() / 1000 - last > 5) { status.className = "waiting"; status.textContent = "connected, no predictions in the last 5 s"; }
    else { status.className = "ok"; status.textContent = `live${state.session ? ": " + state.session : ""}`; }
  }

  async function poll() {
    try {
      const r = await fetch(`api/state?since=${cursor}`, { cache: "no-store" });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const state = await r.json();
      if (state.cursor < cursor) points = []; // the dashboard restarted
      cursor = state.cursor;
      points.push(...state.points);
      if (points.length) {
        const from = points[points.length - 1][0] - WINDOW_S;
        let i = 0;
        while (i < points.length && points[i][0] < from) i++;
        if (i || points.length > MAX_POINTS) points = points.slice(Math.max(i, points.length - MAX_POINTS));
      }
      const names = state.hello && state.hello.labels.length ? state.hello.labels
        : (points.length ? points[0][7].map((_, i) => String(i)) : null);
      if (names && (!classes || (state.hello && classes.join() !== names.slice(0, MAX_CLASSES).join()))) makePlots(names);
      show(state);
      if (plots) draw(state);
    } catch (err) {
      $("status").className = "down";
      $("status").textContent = `dashboard server unreachable (${err.message})`;
    }
    setTimeout(poll, POLL_MS);
  }

  window.addEventListener("resize", () => {
    if (plots) for (const p of Object.values(plots)) p.setSize({ width: width(), height: p.height });
  });
  poll();
})();

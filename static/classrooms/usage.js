// The usage page: every chart is drawn here from the figures the server embedded.
import { barChart, fmt, hbarChart, lineChart } from "./charts.js";

const data = JSON.parse(document.getElementById("usage-data").textContent);
const chart = (name) => document.querySelector(`[data-chart="${name}"]`);
const series = (obj) => Object.entries(obj).map(([name, values]) => ({ name, values }));

lineChart(chart("activity"), {
  labels: data.dates,
  series: [
    { name: "Active users", values: data.active_users },
    { name: "Sessions", values: data.sessions },
  ],
  label: "Active users and sessions per day",
});
barChart(chart("by-model"), { labels: data.dates, series: series(data.tokens_by_model), label: "Tokens per model per day" });
barChart(chart("by-class"), { labels: data.dates, series: series(data.tokens_by_class), label: "Tokens per class per day" });
lineChart(chart("rates"), {
  labels: data.dates,
  series: [
    { name: "Other share", values: data.other_share },
    { name: "Undo rate", values: data.undo_rate },
  ],
  format: fmt.pct,
  label: "Share of Other picks and undo rate per day",
});
barChart(chart("quota"), { labels: data.dates, series: [{ name: "Quota hits", values: data.quota_hits, color: "#f87171" }], label: "Quota hits per day" });
const worker = chart("worker");
if (worker && data.worker && data.worker.available) {
  hbarChart(worker, {
    items: [
      { label: "latency p50", value: data.worker.latency_p50_ms },
      { label: "latency p95", value: data.worker.latency_p95_ms },
    ],
    format: fmt.ms,
    label: "Model worker latency",
  });
  if (data.worker.models.length) {
    const caches = document.createElement("div");
    worker.after(caches);
    hbarChart(caches, {
      items: data.worker.models.map((m) => ({ label: m.model, value: m.logits_cache_hit_rate })),
      format: fmt.pct,
      max: 1,
      label: "Logits cache hit rate per model",
    });
  }
}

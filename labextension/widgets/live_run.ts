// LiveRun: a run's status, duration, params, latest metrics and one chart per metric,
// redrawn whenever the kernel pushes new points.
import type { AnyModel, RenderProps } from "@anywidget/types";
import { LineChart } from "./lib/chart";
import { element, formatDuration, formatNumber, shortRunId } from "./lib/format";
import { decodeSeries, ISeriesEntry, toFloat64 } from "./lib/series";

interface ILatest {
  key: string;
  value: number | null;
  step: number;
}

interface IModel {
  run_id: string;
  run_name: string;
  status: string;
  start_time: number;
  end_time: number;
  params: Record<string, string>;
  latest: ILatest[];
  series_index: ISeriesEntry[];
  series_data: DataView;
  error: string;
}

function render({ model, el }: RenderProps<IModel>): () => void {
  const root = element("div", "labtrack-widget labtrack-liverun");
  const header = element("div", "labtrack-header");
  const status = element("span", "labtrack-status");
  const name = element("span", "labtrack-title");
  const meta = element("span", "labtrack-meta");
  header.append(status, name, meta);
  const error = element("div", "labtrack-error");
  const tables = element("div", "labtrack-tables");
  const charts = element("div", "labtrack-charts");
  root.append(header, error, tables, charts);
  el.appendChild(root);

  const chartByKey = new Map<string, LineChart>();

  function renderHeader(): void {
    const state = model.get("status");
    status.textContent = state;
    status.dataset.status = state;
    name.textContent = model.get("run_name");
    const start = model.get("start_time");
    const end = model.get("end_time") || Date.now();
    const id = model.get("run_id");
    meta.textContent = `${shortRunId(id)} · ${start ? formatDuration(end - start) : ""}`;
    error.textContent = model.get("error");
    error.hidden = !model.get("error");
  }

  function renderTables(): void {
    tables.replaceChildren();
    const params = Object.entries(model.get("params"));
    const latest = model.get("latest");
    for (const [title, rows] of [
      ["Params", params.map(([k, v]) => [k, v])],
      ["Metrics", latest.map((m) => [m.key, `${formatNumber(m.value)} (step ${m.step})`])],
    ] as [string, string[][]][]) {
      if (!rows.length) {
        continue;
      }
      const table = element("table", "labtrack-kv");
      const caption = element("caption", undefined, title);
      table.appendChild(caption);
      for (const [k, v] of rows) {
        const tr = element("tr");
        tr.append(element("th", undefined, k), element("td", undefined, v));
        table.appendChild(tr);
      }
      tables.appendChild(table);
    }
  }

  function renderCharts(): void {
    const series = decodeSeries(model.get("series_index"), toFloat64(model.get("series_data")));
    const seen = new Set<string>();
    for (const s of series) {
      seen.add(s.key);
      let chart = chartByKey.get(s.key);
      if (!chart) {
        chart = new LineChart(charts, { title: s.key, xLabel: "step", height: 180 });
        chartByKey.set(s.key, chart);
      }
      chart.update([s]);
      chart.element.dataset.points = String(s.x.length);
    }
    for (const [key, chart] of chartByKey) {
      if (!seen.has(key)) {
        chart.destroy();
        chart.element.remove();
        chartByKey.delete(key);
      }
    }
  }

  renderHeader();
  renderTables();
  renderCharts();
  const ticker = setInterval(() => {
    if (model.get("status") === "RUNNING") {
      renderHeader();
    }
  }, 1000);
  const onHeader = () => renderHeader();
  const onTables = () => renderTables();
  const onCharts = () => renderCharts();
  model.on("change:status", onHeader);
  model.on("change:run_name", onHeader);
  model.on("change:end_time", onHeader);
  model.on("change:error", onHeader);
  model.on("change:params", onTables);
  model.on("change:latest", onTables);
  model.on("change:series_data", onCharts);
  return () => {
    clearInterval(ticker);
    model.off("change:status", onHeader);
    model.off("change:run_name", onHeader);
    model.off("change:end_time", onHeader);
    model.off("change:error", onHeader);
    model.off("change:params", onTables);
    model.off("change:latest", onTables);
    model.off("change:series_data", onCharts);
    for (const chart of chartByKey.values()) {
      chart.destroy();
    }
  };
}

export default { render };
export type { AnyModel };

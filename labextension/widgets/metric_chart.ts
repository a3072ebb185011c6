// MetricChart: one chart per metric key, one line per run (each run keeps its colour in every
// chart). Smoothing, log scale, zoom, pan and hiding runs are drawn here without asking the
// kernel; a new x axis or a new choice of keys is read again by the kernel.
import type { AnyModel, RenderProps } from "@anywidget/types";
import { LineChart, XRange, colorFor } from "./lib/chart";
import {
  buttonControl,
  checkboxControl,
  chipsControl,
  selectControl,
  sliderControl,
} from "./lib/controls";
import { element } from "./lib/format";
import { ISeries, ISeriesEntry, decodeSeries, toFloat64 } from "./lib/series";

interface IRun {
  run_id: string;
  name: string;
  label: string;
  status: string;
}

interface IModel {
  run_ids: string[];
  runs: IRun[];
  metric_keys: string[];
  available_keys: string[];
  x_axis: string;
  smoothing: number;
  log_y: boolean;
  max_points: number;
  hidden_runs: string[];
  x_range: number[];
  series_index: ISeriesEntry[];
  series_data: DataView;
  error: string;
}

const X_AXES: [string, string][] = [
  ["step", "step"],
  ["time", "wall time"],
  ["relative_time", "relative time (s)"],
];

function xLabel(xAxis: string): string {
  if (xAxis.startsWith("metric:")) {
    return xAxis.slice("metric:".length);
  }
  return xAxis === "relative_time" ? "seconds since run start" : xAxis === "time" ? "wall time" : "step";
}

let chartGroups = 0;

function render({ model, el }: RenderProps<IModel>): () => void {
  const syncKey = `labtrack-metric-chart-${++chartGroups}`;
  const root = element("div", "labtrack-widget labtrack-metric-chart");
  const toolbar = element("div", "labtrack-toolbar");
  const status = element("span", "labtrack-meta");
  const error = element("div", "labtrack-error");
  const charts = element("div", "labtrack-charts");
  const hint = element(
    "div",
    "labtrack-hint",
    "drag: zoom · double-click: reset · shift-drag or horizontal scroll: pan · " +
      "ctrl+wheel: zoom · legend click: hide a run (ctrl-click: only it)"
  );

  const save = (changes: Partial<IModel>) => {
    for (const [name, value] of Object.entries(changes)) {
      model.set(name as keyof IModel, value as never);
    }
    model.save_changes();
  };

  const xAxis = selectControl("x", (value) => {
    status.textContent = "reading…";
    save({ x_axis: value, x_range: [] });
  });
  const smoothing = sliderControl(
    "smoothing",
    { min: 0, max: 0.99, step: 0.01 },
    (value) => model.set("smoothing", value), // redraw at once, tell the kernel on release
    (value) => save({ smoothing: value })
  );
  const logY = checkboxControl("log y", (checked) => save({ log_y: checked }));
  const refresh = buttonControl("↻", () => model.send({ type: "refresh" }), "Read the runs again");
  const keys = chipsControl("metrics", (chosen) => {
    status.textContent = "reading…";
    save({ metric_keys: chosen });
  });
  toolbar.append(xAxis.root, smoothing.root, logY.root, refresh, status);
  root.append(toolbar, keys.root, error, charts, hint);
  el.appendChild(root);

  const chartByKey = new Map<string, LineChart>();
  let saveRange: ReturnType<typeof setTimeout> | undefined;

  function onXRange(source: LineChart, range: XRange | null): void {
    for (const chart of chartByKey.values()) {
      if (chart !== source) {
        chart.setXRange(range);
      }
    }
    // Pan and wheel zoom report many ranges a second: tell the kernel when they settle.
    clearTimeout(saveRange);
    saveRange = setTimeout(() => save({ x_range: range ? [...range] : [] }), 250);
  }

  function onToggle(s: ISeries, show: boolean): void {
    const hidden = new Set(model.get("hidden_runs"));
    if (show) {
      hidden.delete(s.run_id);
    } else {
      hidden.add(s.run_id);
    }
    for (const chart of chartByKey.values()) {
      chart.setHidden(hidden);
    }
    save({ hidden_runs: [...hidden] });
  }

  function renderControls(): void {
    const current = model.get("x_axis");
    const metricAxes = model
      .get("available_keys")
      .map((key): [string, string] => [`metric:${key}`, `metric: ${key}`]);
    const options = [...X_AXES, ...metricAxes];
    if (!options.some(([value]) => value === current)) {
      options.push([current, current]);
    }
    xAxis.set(options.map(([value, label]) => ({ value, label })), current);
    smoothing.set(model.get("smoothing"));
    logY.set(model.get("log_y"));
    keys.set(model.get("available_keys"), model.get("metric_keys"));
    error.textContent = model.get("error");
    error.hidden = !model.get("error");
  }

  function renderStatus(series: ISeries[]): void {
    const runs = model.get("runs").length;
    const sent = series.reduce((n, s) => n + s.length, 0);
    const stored = series.reduce((n, s) => n + s.total_points, 0);
    status.textContent =
      `${runs} run${runs === 1 ? "" : "s"} · ${sent.toLocaleString()} points drawn` +
      (stored > sent ? ` of ${stored.toLocaleString()} (downsampled, extremes kept)` : "");
  }

  function renderCharts(): void {
    const colorOf = new Map(model.get("runs").map((r, i) => [r.run_id, colorFor(i)]));
    const series = decodeSeries(model.get("series_index"), toFloat64(model.get("series_data")));
    const byKey = new Map<string, ISeries[]>(model.get("metric_keys").map((k) => [k, []]));
    for (const s of series) {
      s.color = colorOf.get(s.run_id);
      const list = byKey.get(s.key);
      if (list) {
        list.push(s);
      } else {
        byKey.set(s.key, [s]);
      }
    }
    const axis = model.get("x_axis");
    const range = model.get("x_range");
    const hidden = model.get("hidden_runs");
    for (const [key, list] of byKey) {
      let chart = chartByKey.get(key);
      if (!chart) {
        const created: LineChart = new LineChart(charts, {
          title: key,
          xLabel: xLabel(axis),
          syncKey,
          height: 240,
          onToggle,
          onXRange: (r) => onXRange(created, r),
        });
        chart = created;
        chartByKey.set(key, chart);
      }
      chart.setHidden(hidden);
      chart.update(list, {
        title: list.length ? key : `${key} (no data)`,
        xLabel: xLabel(axis),
        xIsTime: axis === "time",
        logY: model.get("log_y"),
        smoothing: model.get("smoothing"),
      });
      chart.setXRange(range.length === 2 ? [range[0], range[1]] : null);
      chart.element.dataset.key = key;
      chart.element.dataset.points = String(chart.pointCount);
    }
    for (const [key, chart] of chartByKey) {
      if (!byKey.has(key)) {
        chart.destroy();
        chart.element.remove();
        chartByKey.delete(key);
      }
    }
    renderStatus(series);
  }

  const onControls = () => renderControls();
  const onData = () => {
    renderControls();
    renderCharts();
  };
  const onHidden = () => {
    for (const chart of chartByKey.values()) {
      chart.setHidden(model.get("hidden_runs"));
    }
  };
  const onRange = () => {
    const range = model.get("x_range");
    for (const chart of chartByKey.values()) {
      chart.setXRange(range.length === 2 ? [range[0], range[1]] : null);
    }
  };

  onData();
  const events: [string, () => void][] = [
    ["change:series_data", onData],
    ["change:series_index", onData],
    ["change:runs", onData],
    ["change:available_keys", onControls],
    ["change:metric_keys", onControls],
    ["change:x_axis", onControls],
    ["change:error", onControls],
    ["change:smoothing", onData],
    ["change:log_y", onData],
    ["change:hidden_runs", onHidden],
    ["change:x_range", onRange],
  ];
  for (const [name, handler] of events) {
    model.on(name, handler);
  }
  return () => {
    clearTimeout(saveRange);
    for (const [name, handler] of events) {
      model.off(name, handler);
    }
    for (const chart of chartByKey.values()) {
      chart.destroy();
    }
  };
}

export default { render };
export type { AnyModel };

// Metric line charts for one or more runs: one chart per metric key, one line per run in the
// run's colour, drawn by the notebook widgets' chart code (uPlot, widgets/lib/chart.ts) from
// the server's downsampled history. x axis (step, wall time, relative time), EMA smoothing and
// log scale are chosen here; a new x axis is read again, smoothing and log scale are not.
import { LineChart } from '../../widgets/lib/chart';
import {
  checkboxControl,
  chipsControl,
  selectControl,
  sliderControl
} from '../../widgets/lib/controls';
import { ISeries } from '../../widgets/lib/series';
import { ApiError, LabtrackApi } from '../api';
import { asApiError, toNumber } from '../model';
import { IMetricSeries, XAxis } from '../tokens';
import { h, message } from './dom';

export interface IChartRun {
  runId: string;
  label: string;
  color: string;
}

const X_AXES: [XAxis, string][] = [
  ['step', 'step'],
  ['time', 'wall time'],
  ['relative_time', 'relative time (s)']
];
const X_LABELS: Record<XAxis, string> = {
  step: 'step',
  time: 'wall time',
  relative_time: 'seconds since run start'
};
/** Metric keys drawn at first; the chips add the others. */
const FIRST_KEYS = 8;
let groups = 0;

/** A downsampled series as the shared chart code takes it. */
export function toChartSeries(series: IMetricSeries, run: IChartRun): ISeries {
  const x = Float64Array.from(series.x);
  const y = series.values.map(v => {
    const n = toNumber(v);
    return Number.isFinite(n) ? n : null;
  });
  return {
    run_id: series.run_id,
    key: series.key,
    label: run.label,
    offset: 0,
    length: x.length,
    total_points: series.total_points,
    resolution: series.resolution,
    x,
    y,
    color: run.color
  };
}

export class MetricCharts {
  readonly node: HTMLElement;
  xAxis: XAxis = 'step';
  smoothing = 0;
  logY = false;

  constructor(private api: LabtrackApi) {
    this.syncKey = `labtrack-panel-charts-${++groups}`;
    const xAxis = selectControl('x axis', value => {
      this.xAxis = value as XAxis;
      void this.load();
    });
    xAxis.set(
      X_AXES.map(([value, label]) => ({ value, label })),
      this.xAxis
    );
    const smoothing = sliderControl(
      'smoothing',
      { min: 0, max: 0.99, step: 0.01 },
      value => {
        this.smoothing = value;
        this.draw();
      },
      () => undefined
    );
    smoothing.set(0);
    const log = checkboxControl('log scale', checked => {
      this.logY = checked;
      this.draw();
    });
    this.keyChips = chipsControl('metrics', chosen => {
      this.keys = chosen;
      void this.load();
    });
    this.status = h('span', { className: 'jp-Labtrack-meta' });
    this.errorBox = h('div');
    this.grid = h('div', { className: 'labtrack-charts jp-Labtrack-charts' });
    this.node = h(
      'div',
      { className: 'labtrack-widget jp-Labtrack-metric-charts' },
      h('div', { className: 'labtrack-toolbar' }, xAxis.root, smoothing.root, log.root, this.status),
      this.keyChips.root,
      this.errorBox,
      this.grid
    );
  }

  /** The runs to draw and the metric keys they have. */
  setRuns(runs: IChartRun[], keys: string[]): void {
    this.runs = runs;
    this.available = keys;
    this.keys = this.keys.length ? this.keys.filter(k => keys.includes(k)) : keys.slice(0, FIRST_KEYS);
    this.keyChips.set(keys, this.keys);
  }

  /** Read the series of the chosen keys (downsampled) and draw them. */
  async load(): Promise<void> {
    const seq = ++this.seq;
    if (!this.runs.length || !this.keys.length) {
      this.series = [];
      this.draw();
      this.status.textContent = this.available.length ? '' : 'No metrics logged.';
      return;
    }
    this.status.textContent = 'Loading…';
    let error: ApiError | null = null;
    let series: IMetricSeries[] = [];
    try {
      series = await this.api.metricSeries(
        this.runs.map(r => r.runId),
        this.keys,
        this.xAxis
      );
    } catch (failure) {
      error = asApiError(failure);
    }
    if (seq !== this.seq) {
      return;
    }
    this.errorBox.replaceChildren(error ? message(error.readable, 'error') : '');
    this.series = series;
    const points = series.reduce((n, s) => n + s.x.length, 0);
    const total = series.reduce((n, s) => n + s.total_points, 0);
    this.status.textContent = error
      ? ''
      : points < total
        ? `${points.toLocaleString()} of ${total.toLocaleString()} points (extremes kept)`
        : `${points.toLocaleString()} points`;
    this.draw();
  }

  private draw(): void {
    const byRun = new Map(this.runs.map(r => [r.runId, r]));
    const order = new Map(this.runs.map((r, i) => [r.runId, i]));
    const wanted = new Set(this.keys);
    for (const [key, chart] of this.charts) {
      if (!wanted.has(key)) {
        chart.destroy();
        chart.element.parentElement?.remove();
        this.charts.delete(key);
      }
    }
    for (const key of this.keys) {
      const lines = this.series
        .filter(s => s.key === key && byRun.has(s.run_id))
        .sort((a, b) => order.get(a.run_id)! - order.get(b.run_id)!)
        .map(s => toChartSeries(s, byRun.get(s.run_id)!));
      let chart = this.charts.get(key);
      const options = {
        title: key,
        xLabel: X_LABELS[this.xAxis],
        xIsTime: this.xAxis === 'time',
        logY: this.logY,
        smoothing: this.smoothing
      };
      if (!chart) {
        const box = h('div', { className: 'jp-Labtrack-chart-box', dataset: { key } });
        this.grid.append(box);
        chart = new LineChart(box, { ...options, syncKey: this.syncKey, height: 220 });
        this.charts.set(key, chart);
      }
      // Keep the grid in the order of the keys.
      this.grid.append(chart.element.parentElement!);
      chart.update(lines, options);
    }
  }

  dispose(): void {
    for (const chart of this.charts.values()) {
      chart.destroy();
    }
    this.charts.clear();
    this.seq++;
  }

  private syncKey: string;
  private runs: IChartRun[] = [];
  private available: string[] = [];
  private keys: string[] = [];
  private series: IMetricSeries[] = [];
  private charts = new Map<string, LineChart>();
  private keyChips: ReturnType<typeof chipsControl>;
  private status: HTMLElement;
  private errorBox: HTMLElement;
  private grid: HTMLElement;
  private seq = 0;
}

// Line charts on uPlot (canvas): many series, optional EMA smoothing and log scale, hover
// values in the legend, click a legend entry to hide a series, drag to zoom, double-click
// to reset. Used by the notebook widgets and (later) the side panel.
import uPlot from "uplot";
import { ISeries, smooth } from "./series";

export interface IChartOptions {
  title?: string;
  xLabel: string;
  xIsTime?: boolean; // x values are epoch milliseconds
  logY?: boolean;
  smoothing?: number;
  height?: number;
}

const PALETTE = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
];

export function colorFor(index: number): string {
  return PALETTE[index % PALETTE.length];
}

/** Series with different x values are put on one sorted x axis (uPlot's data model). */
export function alignSeries(series: ISeries[], smoothing: number): uPlot.AlignedData {
  const xs = new Set<number>();
  for (const s of series) {
    for (const x of s.x) {
      xs.add(x);
    }
  }
  const xAxis = Float64Array.from(xs).sort();
  const position = new Map<number, number>();
  xAxis.forEach((x, i) => position.set(x, i));
  const columns: (number | null)[][] = series.map((s) => {
    const column: (number | null)[] = new Array(xAxis.length).fill(null);
    const ys = smooth(s.y, smoothing);
    s.x.forEach((x, i) => {
      column[position.get(x)!] = ys[i];
    });
    return column;
  });
  return [Array.from(xAxis), ...columns] as uPlot.AlignedData;
}

export class LineChart {
  readonly element: HTMLDivElement;
  private plot: uPlot | null = null;
  private series: ISeries[] = [];
  private options: IChartOptions;
  private resizeObserver: ResizeObserver;

  constructor(parent: HTMLElement, options: IChartOptions) {
    this.options = options;
    this.element = document.createElement("div");
    this.element.className = "labtrack-chart";
    parent.appendChild(this.element);
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(this.element);
  }

  get pointCount(): number {
    return this.series.reduce((total, s) => total + s.x.length, 0);
  }

  update(series: ISeries[], options: Partial<IChartOptions> = {}): void {
    const rebuild =
      series.length !== this.series.length ||
      series.some((s, i) => s.label !== this.series[i].label) ||
      Object.entries(options).some(
        ([k, v]) => (this.options as unknown as Record<string, unknown>)[k] !== v
      );
    this.options = { ...this.options, ...options };
    this.series = series;
    const data = alignSeries(series, this.options.smoothing ?? 0);
    if (this.plot && !rebuild) {
      this.plot.setData(data);
      return;
    }
    this.plot?.destroy();
    this.plot = new uPlot(this.config(), data, this.element);
  }

  private config(): uPlot.Options {
    const width = Math.max(this.element.clientWidth, 240);
    return {
      title: this.options.title,
      width,
      height: this.options.height ?? 220,
      scales: {
        x: { time: this.options.xIsTime ?? false },
        y: { distr: this.options.logY ? 3 : 1 },
      },
      axes: [{ label: this.options.xLabel }, {}],
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
      series: [
        { label: this.options.xLabel },
        ...this.series.map((s, i) => ({
          label: s.label,
          stroke: colorFor(i),
          width: 1.5,
          spanGaps: false,
          points: { show: s.x.length < 60 },
        })),
      ],
    };
  }

  private resize(): void {
    if (this.plot) {
      const width = Math.max(this.element.clientWidth, 240);
      if (width !== this.plot.width) {
        this.plot.setSize({ width, height: this.plot.height });
      }
    }
  }

  destroy(): void {
    this.resizeObserver.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }
}

// Line charts on uPlot (canvas): many series, optional EMA smoothing and log scale, hover
// values in the legend, click a legend entry to hide a series (ctrl/cmd-click: only it),
// drag to zoom, double-click to reset, shift-drag or a horizontal wheel (trackpad swipe,
// shift+wheel) to pan, ctrl/cmd+wheel to zoom at the cursor. A plain vertical wheel is left
// to the page, so a notebook still scrolls over a chart. Used by the notebook widgets and
// (later) the side panel.
import uPlot from "uplot";
import { colorFor } from "./colors";
import { formatNumber } from "./format";
import { ISeries, smooth } from "./series";

export type XRange = [number, number];

export interface IChartOptions {
  title?: string;
  xLabel: string;
  xIsTime?: boolean; // x values are epoch milliseconds
  logY?: boolean; // y ≤ 0 is not drawn
  smoothing?: number;
  height?: number;
  /** Charts with the same key show the hover cursor at the same x. */
  syncKey?: string;
  /** The user showed or hid a series from the legend. */
  onToggle?: (series: ISeries, show: boolean) => void;
  /** The user zoomed or panned (a range) or reset the zoom (null). */
  onXRange?: (range: XRange | null) => void;
}

// Options that change how the chart is built; the others only change its data.
const LAYOUT_OPTIONS = ["title", "xLabel", "xIsTime", "logY", "height"] as const;

export { colorFor };

/** First index in the sorted `values` whose value is >= `x`. */
function lowerBound(values: Float64Array, x: number): number {
  let low = 0;
  let high = values.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (values[middle] < x) {
      low = middle + 1;
    } else {
      high = middle;
    }
  }
  return low;
}

/**
 * Series with different x values are put on one sorted x axis (uPlot's data model). Where a
 * series has no point at an x, its column holds `undefined`, which uPlot draws across and
 * hover skips; `null` (NaN, infinities, and y ≤ 0 on a log scale) is a gap in the line.
 * When a series has several points at one x (points logged within one millisecond on a
 * wall-time axis, or at one step), the last of them is drawn there.
 */
export function alignSeries(series: ISeries[], smoothing: number, logY = false): uPlot.AlignedData {
  let total = 0;
  for (const s of series) {
    total += s.x.length;
  }
  const all = new Float64Array(total);
  let offset = 0;
  for (const s of series) {
    all.set(s.x, offset);
    offset += s.x.length;
  }
  all.sort();
  let distinct = 0;
  for (let i = 0; i < all.length; i++) {
    if (i === 0 || all[i] !== all[distinct - 1]) {
      all[distinct++] = all[i];
    }
  }
  const xAxis = all.slice(0, distinct);
  const columns = series.map((s) => {
    const column: (number | null | undefined)[] = new Array(xAxis.length);
    const ys = smooth(s.y, smoothing);
    for (let i = 0; i < s.x.length; i++) {
      const y = ys[i];
      column[lowerBound(xAxis, s.x[i])] = logY && y !== null && y <= 0 ? null : y;
    }
    return column;
  });
  return [xAxis, ...columns] as uPlot.AlignedData;
}

function sameRange(a: XRange | null, b: XRange | null): boolean {
  return a === b || (a !== null && b !== null && a[0] === b[0] && a[1] === b[1]);
}

export class LineChart {
  readonly element: HTMLDivElement;
  private plot: uPlot | null = null;
  private series: ISeries[] = [];
  private options: IChartOptions;
  private resizeObserver: ResizeObserver;
  private hidden = new Set<string>(); // run ids of series hidden from the legend
  private xRange: XRange | null = null; // the zoom window, null when showing everything
  private quiet = false; // set while the chart changes itself (no callbacks)

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
    const current = this.options as unknown as Record<string, unknown>;
    const relayout = LAYOUT_OPTIONS.some((k) => k in options && options[k] !== current[k]);
    if (options.xLabel !== undefined && options.xLabel !== this.options.xLabel) {
      this.xRange = null; // a zoom window means nothing on another x axis
    }
    if (options.xIsTime !== undefined && options.xIsTime !== this.options.xIsTime) {
      this.xRange = null;
    }
    const rebuild =
      relayout ||
      series.length !== this.series.length ||
      series.some(
        (s, i) =>
          s.label !== this.series[i].label ||
          s.color !== this.series[i].color ||
          s.run_id !== this.series[i].run_id ||
          (s.x.length < 60) !== (this.series[i].x.length < 60)
      );
    this.options = { ...this.options, ...options };
    this.series = series;
    const data = alignSeries(series, this.options.smoothing ?? 0, this.options.logY ?? false);
    this.quiet = true;
    try {
      if (this.plot && !rebuild) {
        this.plot.setData(data);
      } else {
        this.plot?.destroy();
        this.plot = new uPlot(this.config(), data, this.element);
      }
      if (this.xRange) {
        this.plot.setScale("x", { min: this.xRange[0], max: this.xRange[1] });
      }
    } finally {
      this.quiet = false;
    }
  }

  /** Show only the series whose run is not in `runIds`. */
  setHidden(runIds: Iterable<string>): void {
    this.hidden = new Set(runIds);
    const plot = this.plot;
    if (!plot) {
      return;
    }
    this.quiet = true;
    try {
      this.series.forEach((s, i) => {
        const show = !this.hidden.has(s.run_id);
        if (plot.series[i + 1].show !== show) {
          plot.setSeries(i + 1, { show });
        }
      });
    } finally {
      this.quiet = false;
    }
  }

  /** Zoom to `range`, or show everything (null); does not call `onXRange`. */
  setXRange(range: XRange | null): void {
    if (sameRange(range, this.xRange)) {
      return;
    }
    this.xRange = range;
    const extent = this.extent();
    if (this.plot && extent) {
      const [min, max] = range ?? extent;
      this.plot.setScale("x", { min, max });
    }
  }

  get zoom(): XRange | null {
    return this.xRange;
  }

  private extent(): XRange | null {
    const xs = this.plot?.data[0];
    if (!xs || xs.length < 2) {
      return null;
    }
    return [xs[0], xs[xs.length - 1]];
  }

  private report(range: XRange | null): void {
    this.xRange = range;
    if (!this.quiet) {
      this.options.onXRange?.(range);
    }
  }

  /** Move the window to [low, high] inside the data's extent (the whole extent: no zoom). */
  private moveTo(plot: uPlot, low: number, high: number): void {
    const extent = this.extent();
    if (!extent || !(high > low)) {
      return;
    }
    const width = high - low;
    if (width >= extent[1] - extent[0]) {
      plot.setScale("x", { min: extent[0], max: extent[1] });
      this.report(null);
      return;
    }
    if (low < extent[0]) {
      [low, high] = [extent[0], extent[0] + width];
    } else if (high > extent[1]) {
      [low, high] = [extent[1] - width, extent[1]];
    }
    plot.setScale("x", { min: low, max: high });
    this.report([low, high]);
  }

  private attachPanZoom(plot: uPlot): void {
    const over = plot.over;
    over.addEventListener("mousedown", (event) => {
      const { min, max } = plot.scales.x;
      if (!event.shiftKey || event.button !== 0 || min == null || max == null) {
        return;
      }
      event.preventDefault();
      const start = event.clientX;
      const perPixel = (max - min) / Math.max(over.clientWidth, 1);
      const move = (e: MouseEvent) => {
        const shift = (e.clientX - start) * perPixel;
        this.moveTo(plot, min - shift, max - shift);
      };
      const up = () => {
        document.removeEventListener("mousemove", move);
        document.removeEventListener("mouseup", up);
      };
      document.addEventListener("mousemove", move);
      document.addEventListener("mouseup", up);
    });
    over.addEventListener(
      "wheel",
      (event) => {
        const { min, max } = plot.scales.x;
        if (min == null || max == null) {
          return;
        }
        const perPixel = (max - min) / Math.max(over.clientWidth, 1);
        if (event.ctrlKey || event.metaKey) {
          const factor = Math.exp(Math.max(-1, Math.min(1, event.deltaY / 200)));
          const left = event.clientX - over.getBoundingClientRect().left;
          const at = min + left * perPixel;
          this.moveTo(plot, at - (at - min) * factor, at + (max - at) * factor);
        } else if (Math.abs(event.deltaX) > Math.abs(event.deltaY)) {
          this.moveTo(plot, min + event.deltaX * perPixel, max + event.deltaX * perPixel);
        } else if (event.shiftKey && event.deltaY) {
          this.moveTo(plot, min + event.deltaY * perPixel, max + event.deltaY * perPixel);
        } else {
          return; // a vertical wheel scrolls the page
        }
        event.preventDefault();
      },
      { passive: false }
    );
    over.addEventListener("dblclick", () => this.report(null));
  }

  private config(): uPlot.Options {
    const width = Math.max(this.element.clientWidth, 240);
    const xIsTime = this.options.xIsTime ?? false;
    const value = (_u: uPlot, v: number | null) => (v == null ? "—" : formatNumber(v));
    const xValue = (_u: uPlot, v: number | null) =>
      v == null ? "—" : Number.isInteger(v) ? v.toLocaleString() : formatNumber(v);
    return {
      title: this.options.title,
      width,
      height: this.options.height ?? 220,
      ms: xIsTime ? 1 : 1e-3,
      scales: {
        x: { time: xIsTime },
        y: { distr: this.options.logY ? 3 : 1 },
      },
      axes: [{ label: this.options.xLabel }, {}],
      cursor: {
        drag: { x: true, y: false },
        // shift-drag pans (attachPanZoom) instead of selecting a zoom window
        bind: {
          mousedown: (_u, _target, handler) => (e) => (e.shiftKey ? null : handler(e)),
        },
        sync: this.options.syncKey ? { key: this.options.syncKey, setSeries: false } : undefined,
      },
      legend: { live: true },
      series: [
        xIsTime ? { label: this.options.xLabel } : { label: this.options.xLabel, value: xValue },
        ...this.series.map((s, i) => ({
          label: s.label,
          stroke: s.color ?? colorFor(i),
          width: 1.5,
          spanGaps: false,
          show: !this.hidden.has(s.run_id),
          points: { show: s.x.length < 60 },
          value,
        })),
      ],
      hooks: {
        ready: [(plot) => this.attachPanZoom(plot)],
        setSelect: [
          (plot) => {
            const { left, width: selected } = plot.select;
            if (selected > 2) {
              this.report([plot.posToVal(left, "x"), plot.posToVal(left + selected, "x")]);
            }
          },
        ],
        setSeries: [
          (plot, index, opts) => {
            if (this.quiet || opts.show === undefined) {
              return;
            }
            this.series.forEach((s, i) => {
              if (index === null || index === i + 1) {
                if (opts.show) {
                  this.hidden.delete(s.run_id);
                } else {
                  this.hidden.add(s.run_id);
                }
                this.options.onToggle?.(s, plot.series[i + 1].show ?? true);
              }
            });
          },
        ],
      },
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

// SVG building blocks for the params-vs-metrics charts (parallel coordinates, scatter):
// element creation, scales with readable ticks, axes built from the kernel's axis index, a
// colour ramp and a hover tooltip.
import { formatNumber } from "./format";

const SVG_NS = "http://www.w3.org/2000/svg";

export function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attributes: Record<string, string | number> = {},
  parent?: Element
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) {
    node.setAttribute(name, String(value));
  }
  parent?.appendChild(node);
  return node;
}

/** How the kernel describes a column drawn on an axis (see `Column.index` in _runs.py). */
export interface IAxisInfo {
  name: string; // params.<key> | metrics.<key>
  label: string;
  kind: "numeric" | "categorical";
  categories: string[];
  min: number | null;
  max: number | null;
  missing: number;
  log: boolean; // the kernel's suggestion: positive values spanning 3 decades or more
}

/** A short label for a tick: 1e-4 rather than 1.000e-4, 0.25 rather than 0.25000. */
export function tickLabel(value: number): string {
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e6)) {
    return value.toExponential().replace("e+", "e");
  }
  return String(Number(value.toPrecision(6)));
}

export interface IScale {
  (value: number): number; // value -> pixel
  invert(pixel: number): number;
  ticks: { value: number; label: string }[];
}

/** About `count` round numbers covering [low, high]. */
export function niceTicks(low: number, high: number, count = 5): number[] {
  if (!(high > low)) {
    return [low];
  }
  const raw = (high - low) / count;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => raw <= s) ?? 10 * power;
  const ticks = [];
  for (let t = Math.ceil(low / step) * step; t <= high + step * 1e-9; t += step) {
    ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  }
  return ticks;
}

/** Powers of ten between 10^a and 10^b (round numbers when they span less than a decade). */
function logTicks(a: number, b: number): number[] {
  const first = Math.ceil(a - 1e-9);
  const last = Math.floor(b + 1e-9);
  if (last <= first) {
    return niceTicks(Math.pow(10, a), Math.pow(10, b), 4).filter((t) => t > 0);
  }
  const step = Math.max(1, Math.ceil((last - first) / 6));
  const ticks = [];
  for (let e = first; e <= last; e += step) {
    ticks.push(Math.pow(10, e));
  }
  return ticks;
}

/** A linear (or log10) map of [low, high] onto [from, to] pixels. */
export function numericScale(
  low: number,
  high: number,
  from: number,
  to: number,
  log = false
): IScale {
  let a = log ? Math.log10(low) : low;
  let b = log ? Math.log10(high) : high;
  if (!(b > a)) {
    // one value (or none): centre it
    const pad = log ? 1 : Math.abs(a) * 0.1 || 1;
    a -= pad;
    b += pad;
  }
  const forward = (v: number) => (log ? Math.log10(v) : v);
  const scale = ((value: number) => from + ((forward(value) - a) / (b - a)) * (to - from)) as IScale;
  scale.invert = (pixel: number) => {
    const v = a + ((pixel - from) / (to - from)) * (b - a);
    return log ? Math.pow(10, v) : v;
  };
  const values = log ? logTicks(a, b) : niceTicks(a, b);
  scale.ticks = values.map((value) => ({ value, label: tickLabel(value) }));
  return scale;
}

/** Categories evenly spaced on [from, to]; `padded` keeps half a slot free at each end. */
export function categoricalScale(
  categories: string[],
  from: number,
  to: number,
  padded = false
): IScale {
  const n = categories.length;
  const low = padded ? -0.5 : 0;
  const high = padded ? n - 0.5 : n - 1;
  const span = high > low ? high - low : 1;
  const middle = (from + to) / 2;
  const scale = ((value: number) =>
    high > low ? from + ((value - low) / span) * (to - from) : middle) as IScale;
  scale.invert = (pixel: number) => (high > low ? low + ((pixel - from) / (to - from)) * span : 0);
  scale.ticks = categories.map((label, value) => ({ value, label }));
  return scale;
}

/** The scale for a kernel axis; `log` applies to numeric axes whose values are all > 0. */
export function scaleFor(axis: IAxisInfo, from: number, to: number, log = false, padded = false): IScale {
  if (axis.kind === "categorical") {
    return categoricalScale(axis.categories, from, to, padded);
  }
  const low = axis.min ?? 0;
  const high = axis.max ?? 1;
  const useLog = log && low > 0;
  if (padded && high > low) {
    if (useLog) {
      const pad = (Math.log10(high) - Math.log10(low)) * 0.05;
      return numericScale(low / Math.pow(10, pad), high * Math.pow(10, pad), from, to, true);
    }
    const pad = (high - low) * 0.05;
    return numericScale(low - pad, high + pad, from, to);
  }
  return numericScale(low, high, from, to, useLog);
}

/** The text for a value on an axis (a category's name on a categorical one). */
export function axisText(axis: IAxisInfo, value: number): string {
  if (!Number.isFinite(value)) {
    return "—";
  }
  return axis.kind === "categorical" ? axis.categories[value] ?? "—" : formatNumber(value);
}

// viridis, sampled at 9 stops and interpolated
const VIRIDIS = [
  [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
  [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
];

export function viridis(t: number): string {
  const u = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(u));
  const f = u - i;
  const [r, g, b] = VIRIDIS[i].map((c, k) => Math.round(c + (VIRIDIS[i + 1][k] - c) * f));
  return `rgb(${r}, ${g}, ${b})`;
}

/** A small box that follows the pointer inside `host` (which must be positioned). */
export class Tooltip {
  private box: HTMLDivElement;

  constructor(private host: HTMLElement) {
    this.box = document.createElement("div");
    this.box.className = "labtrack-tooltip";
    this.box.hidden = true;
    host.appendChild(this.box);
  }

  show(title: string, rows: [string, string][], event: MouseEvent): void {
    this.box.replaceChildren();
    const heading = document.createElement("strong");
    heading.textContent = title;
    this.box.appendChild(heading);
    for (const [name, value] of rows) {
      const line = document.createElement("div");
      line.textContent = `${name}: ${value}`;
      this.box.appendChild(line);
    }
    this.box.hidden = false;
    const bounds = this.host.getBoundingClientRect();
    const x = event.clientX - bounds.left + 12;
    const y = event.clientY - bounds.top + 12;
    const width = this.box.offsetWidth;
    this.box.style.left = `${x + width > bounds.width ? Math.max(0, x - width - 24) : x}px`;
    this.box.style.top = `${y}px`;
  }

  hide(): void {
    this.box.hidden = true;
  }
}

/** Calls `draw` whenever `element` changes width (and once now). */
export function onWidth(element: HTMLElement, draw: () => void): ResizeObserver {
  let width = -1;
  const observer = new ResizeObserver(() => {
    if (element.clientWidth !== width) {
      width = element.clientWidth;
      draw();
    }
  });
  observer.observe(element);
  return observer;
}

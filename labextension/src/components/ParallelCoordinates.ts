// Parallel coordinates of a few runs: one vertical axis per chosen param or metric (numeric,
// or categorical when a param's values are not all numbers), one line per run in its colour.
// Drawn in SVG with the notebook widgets' scales and tooltip (widgets/lib/svg.ts).
import { chipsControl } from '../../widgets/lib/controls';
import { IAxisInfo, Tooltip, axisText, onWidth, scaleFor, svg } from '../../widgets/lib/svg';
import { IRunRow } from '../model';
import { h, message } from './dom';

export interface IParallelRun {
  row: IRunRow;
  label: string;
  color: string;
}

const HEIGHT = 300;
const MARGIN = { top: 40, right: 60, bottom: 24, left: 60 };

/** An axis for `name` (params.<key> or metrics.<key>) and each run's position on it. */
export function axisFor(name: string, runs: IRunRow[]): { axis: IAxisInfo; values: number[] } {
  const [kind, ...rest] = name.split('.');
  const key = rest.join('.');
  const raw = runs.map(row =>
    kind === 'metrics' ? row.metrics.get(key) : row.params.get(key)
  );
  const present = raw.filter(v => v !== undefined) as (number | string)[];
  const numeric =
    kind === 'metrics' || present.every(v => v !== '' && Number.isFinite(Number(v)));
  let values: number[];
  let axis: IAxisInfo;
  if (numeric) {
    values = raw.map(v => (v === undefined ? NaN : Number(v)));
    const finite = values.filter(Number.isFinite);
    axis = {
      name,
      label: key,
      kind: 'numeric',
      categories: [],
      min: finite.length ? Math.min(...finite) : null,
      max: finite.length ? Math.max(...finite) : null,
      missing: values.length - finite.length,
      log: false
    };
  } else {
    const categories = [...new Set(present.map(String))].sort((a, b) => a.localeCompare(b));
    values = raw.map(v => (v === undefined ? NaN : categories.indexOf(String(v))));
    axis = {
      name,
      label: key,
      kind: 'categorical',
      categories,
      min: 0,
      max: categories.length - 1,
      missing: values.filter(v => Number.isNaN(v)).length,
      log: false
    };
  }
  return { axis, values };
}

export class ParallelCoordinates {
  readonly node: HTMLElement;

  constructor() {
    this.chips = chipsControl('axes', chosen => {
      this.chosen = chosen;
      this.draw();
    });
    this.plot = h('div', { className: 'labtrack-plot jp-Labtrack-parallel' });
    this.tooltip = new Tooltip(this.plot);
    this.node = h('div', { className: 'labtrack-widget' }, this.chips.root, this.plot);
    this.observer = onWidth(this.plot, () => this.draw());
  }

  /** The runs, and the params/metrics offered as axes (those that differ are chosen first). */
  setRuns(runs: IParallelRun[], names: string[], chosen: string[]): void {
    this.runs = runs;
    this.names = names;
    this.chosen = chosen;
    this.chips.set(names, chosen);
    this.draw();
  }

  private draw(): void {
    const width = Math.max(this.plot.clientWidth, 320);
    if (this.chosen.length < 2 || this.runs.length < 1) {
      this.plot.replaceChildren(message(this.names.length < 2 ? 'The runs need two params or metrics for this chart.' : 'Choose two or more axes.'));
      return;
    }
    const rows = this.runs.map(r => r.row);
    const axes = this.chosen.map(name => axisFor(name, rows));
    const root = svg('svg', { width, height: HEIGHT, class: 'labtrack-parallel-svg' });
    const step = axes.length > 1 ? (width - MARGIN.left - MARGIN.right) / (axes.length - 1) : 0;
    const x = (i: number) => MARGIN.left + i * step;
    const scales = axes.map(({ axis }) => scaleFor(axis, HEIGHT - MARGIN.bottom, MARGIN.top, false, true));
    axes.forEach(({ axis }, i) => {
      const group = svg('g', { class: 'labtrack-axis', transform: `translate(${x(i)},0)` }, root);
      svg('line', { y1: MARGIN.top, y2: HEIGHT - MARGIN.bottom, stroke: 'currentColor', 'stroke-opacity': 0.5 }, group);
      const title = svg('text', { y: MARGIN.top - 18, 'text-anchor': 'middle', class: 'labtrack-axis-title' }, group);
      title.textContent = axis.label;
      for (const tick of scales[i].ticks) {
        const y = scales[i](tick.value);
        svg('line', { x1: -4, x2: 0, y1: y, y2: y, stroke: 'currentColor' }, group);
        const label = svg('text', { x: -7, y: y + 3, 'text-anchor': 'end', class: 'labtrack-tick' }, group);
        label.textContent = tick.label;
      }
    });
    this.runs.forEach((run, r) => {
      const points: string[] = [];
      axes.forEach(({ values }, i) => {
        const value = values[r];
        if (Number.isFinite(value)) {
          points.push(`${x(i)},${scales[i](value)}`);
        }
      });
      const line = svg('polyline', {
        points: points.join(' '),
        fill: 'none',
        stroke: run.color,
        'stroke-width': 2.5,
        class: 'jp-Labtrack-parallel-line'
      }, root);
      line.dataset.runId = run.row.run.info.run_id;
      line.addEventListener('mousemove', event =>
        this.tooltip.show(
          run.label,
          axes.map(({ axis, values }) => [axis.label, axisText(axis, values[r])]),
          event
        )
      );
      line.addEventListener('mouseleave', () => this.tooltip.hide());
    });
    this.plot.replaceChildren(root);
    this.tooltip = new Tooltip(this.plot); // its box lives in the plot, replaced just now
  }

  dispose(): void {
    this.observer.disconnect();
  }

  private runs: IParallelRun[] = [];
  private names: string[] = [];
  private chosen: string[] = [];
  private chips: ReturnType<typeof chipsControl>;
  private plot: HTMLElement;
  private tooltip: Tooltip;
  private observer: ResizeObserver;
}

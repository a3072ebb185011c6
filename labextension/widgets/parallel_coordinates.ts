// ParallelCoordinates: one polyline per run across an axis per param and per metric (SVG).
// Drag along an axis to brush a range (runs outside it turn grey), click an axis to clear its
// brush, click an axis title to colour the lines by it, hover a line to read its run.
import type { AnyModel, RenderProps } from "@anywidget/types";
import { colorFor } from "./lib/colors";
import { buttonControl, chipsControl, selectControl } from "./lib/controls";
import { element } from "./lib/format";
import { toFloat64 } from "./lib/series";
import { IAxisInfo, IScale, Tooltip, axisText, onWidth, scaleFor, svg, viridis } from "./lib/svg";

interface IRun {
  run_id: string;
  name: string;
  label: string;
  status: string;
}

type Brushes = Record<string, [number, number]>;

interface IModel {
  run_ids: string[];
  runs: IRun[];
  params: string[];
  metrics: string[];
  available_params: string[];
  available_metrics: string[];
  axes: IAxisInfo[];
  values: DataView;
  color_by: string;
  brushes: Brushes;
  selected_run_ids: string[];
  error: string;
}

const HEIGHT = 340;
const MARGIN = { top: 44, right: 56, bottom: 28, left: 56 };

function render({ model, el }: RenderProps<IModel>): () => void {
  const root = element("div", "labtrack-widget labtrack-parallel");
  const toolbar = element("div", "labtrack-toolbar");
  const status = element("span", "labtrack-meta");
  const error = element("div", "labtrack-error");
  const plot = element("div", "labtrack-plot");
  const hint = element(
    "div",
    "labtrack-hint",
    "drag along an axis: brush · click an axis: clear its brush · click a title: colour by it"
  );
  const tooltip = new Tooltip(plot);

  const save = (changes: Partial<IModel>) => {
    for (const [name, value] of Object.entries(changes)) {
      model.set(name as keyof IModel, value as never);
    }
    model.save_changes();
  };
  const colorBy = selectControl("colour by", (value) => save({ color_by: value }));
  const clear = buttonControl("clear brushes", () => save({ brushes: {} }));
  const refresh = buttonControl("↻", () => model.send({ type: "refresh" }), "Read the runs again");
  const params = chipsControl("params", (chosen) => save({ params: chosen }));
  const metrics = chipsControl("metrics", (chosen) => save({ metrics: chosen }));
  toolbar.append(colorBy.root, clear, refresh, status);
  root.append(toolbar, params.root, metrics.root, error, plot, hint);
  el.appendChild(root);

  // While a brush is being dragged it lives here; the model gets it on release.
  let brushes: Brushes = { ...model.get("brushes") };
  let paths: SVGPathElement[] = [];
  let layers: { dimmed: SVGGElement; selected: SVGGElement } | null = null;

  function value(values: Float64Array, row: number, axis: number, axes: number): number {
    return values[row * axes + axis];
  }

  function inside(values: Float64Array, axes: IAxisInfo[], row: number): boolean {
    return axes.every((axis, a) => {
      const bounds = brushes[axis.name];
      const v = value(values, row, a, axes.length);
      return !bounds || (Number.isFinite(v) && v >= bounds[0] && v <= bounds[1]);
    });
  }

  function lineColors(values: Float64Array, axes: IAxisInfo[], rows: number): string[] {
    const a = axes.findIndex((axis) => axis.name === model.get("color_by"));
    if (a < 0) {
      return Array.from({ length: rows }, (_, row) => colorFor(row));
    }
    const axis = axes[a];
    const low = axis.kind === "categorical" ? 0 : axis.min ?? 0;
    const high = axis.kind === "categorical" ? axis.categories.length - 1 : axis.max ?? 1;
    return Array.from({ length: rows }, (_, row) => {
      const v = value(values, row, a, axes.length);
      if (!Number.isFinite(v)) {
        return "#999";
      }
      if (axis.kind === "categorical" && axis.categories.length <= 10) {
        return colorFor(v);
      }
      const [from, to, at] = axis.log ? [low, high, v].map(Math.log10) : [low, high, v];
      return viridis(to > from ? (at - from) / (to - from) : 0.5);
    });
  }

  function restyle(): void {
    const values = toFloat64(model.get("values"));
    const axes = model.get("axes");
    let selected = 0;
    paths.forEach((path, row) => {
      const on = inside(values, axes, row);
      selected += on ? 1 : 0;
      const layer = on ? layers?.selected : layers?.dimmed; // selected lines on top
      if (layer && path.parentNode !== layer) {
        path.classList.toggle("labtrack-dimmed", !on);
        layer.appendChild(path);
      }
    });
    const runs = model.get("runs").length;
    status.textContent = Object.keys(brushes).length
      ? `${selected} of ${runs} runs selected`
      : `${runs} run${runs === 1 ? "" : "s"}`;
  }

  function draw(): void {
    tooltip.hide();
    const axes = model.get("axes");
    const runs = model.get("runs");
    const values = toFloat64(model.get("values"));
    const width = Math.max(plot.clientWidth, 160 * Math.max(axes.length - 1, 1) / 2, 360);
    const chart = svg("svg", { width, height: HEIGHT, class: "labtrack-svg" });
    plot.querySelector("svg")?.remove();
    plot.prepend(chart);
    paths = [];
    layers = null;
    if (!axes.length || !runs.length) {
      svg("text", { x: width / 2, y: HEIGHT / 2, "text-anchor": "middle" }, chart).textContent =
        runs.length ? "choose params or metrics to draw" : "no runs";
      restyle();
      return;
    }
    const top = MARGIN.top;
    const bottom = HEIGHT - MARGIN.bottom;
    const span = width - MARGIN.left - MARGIN.right;
    const xOf = (a: number) =>
      axes.length === 1 ? MARGIN.left + span / 2 : MARGIN.left + (a * span) / (axes.length - 1);
    const scales: IScale[] = axes.map((axis) => scaleFor(axis, bottom, top, axis.log));
    const colors = lineColors(values, axes, runs.length);

    const lines = svg("g", { class: "labtrack-lines" }, chart);
    const layer = { dimmed: svg("g", {}, lines), selected: svg("g", {}, lines) };
    layers = layer;
    runs.forEach((run, row) => {
      let d = "";
      let pen = false;
      axes.forEach((_axis, a) => {
        const v = value(values, row, a, axes.length);
        if (!Number.isFinite(v)) {
          pen = false; // no value: break the line
          return;
        }
        d += `${pen ? "L" : "M"}${xOf(a).toFixed(1)},${scales[a](v).toFixed(1)}`;
        pen = true;
      });
      const path = svg("path", { d, stroke: colors[row], class: "labtrack-line" }, layer.selected);
      path.dataset.runId = run.run_id;
      path.addEventListener("mousemove", (event) =>
        tooltip.show(
          run.label,
          axes.map((axis, a) => [axis.name, axisText(axis, value(values, row, a, axes.length))]),
          event
        )
      );
      path.addEventListener("mouseleave", () => tooltip.hide());
      paths.push(path);
    });

    axes.forEach((axis, a) => {
      const x = xOf(a);
      const group = svg("g", { class: "labtrack-axis" }, chart);
      svg("line", { x1: x, x2: x, y1: top, y2: bottom }, group);
      for (const tick of scales[a].ticks) {
        const y = scales[a](tick.value);
        if (y < top - 1 || y > bottom + 1) {
          continue;
        }
        svg("line", { x1: x - 4, x2: x, y1: y, y2: y }, group);
        svg("text", { x: x - 6, y: y + 3, "text-anchor": "end" }, group).textContent = tick.label;
      }
      const title = svg(
        "text",
        { x, y: top - 22, "text-anchor": "middle", class: "labtrack-axis-title" },
        group
      );
      title.textContent = axis.label;
      title.dataset.selected = String(axis.name === model.get("color_by"));
      svg("title", {}, title).textContent = `${axis.name}: click to colour the lines by it`;
      title.addEventListener("click", () => save({ color_by: axis.name }));
      svg("text", { x, y: top - 9, "text-anchor": "middle", class: "labtrack-axis-kind" }, group)
        .textContent = (axis.name.startsWith("metrics.") ? "metric" : "param") + (axis.log ? " · log" : "");
      brushArea(group, axis, scales[a], x, top, bottom);
    });
    restyle();
  }

  function brushArea(
    group: SVGGElement,
    axis: IAxisInfo,
    scale: IScale,
    x: number,
    top: number,
    bottom: number
  ): void {
    const mark = svg("rect", { x: x - 8, width: 16, class: "labtrack-brush" }, group);
    const show = () => {
      const bounds = brushes[axis.name];
      mark.style.display = bounds ? "" : "none";
      if (bounds) {
        const y0 = Math.max(top, Math.min(scale(bounds[0]), scale(bounds[1])));
        const y1 = Math.min(bottom, Math.max(scale(bounds[0]), scale(bounds[1])));
        mark.setAttribute("y", String(y0));
        mark.setAttribute("height", String(Math.max(y1 - y0, 2)));
      }
    };
    show();
    // A brush dragged to an end of the axis takes the axis' own end (no rounding off it).
    const ends = axis.kind === "numeric" && axis.min !== null && axis.max !== null && axis.max > axis.min;
    const valueAt = (pixel: number) =>
      ends && pixel <= top ? (axis.max as number) : ends && pixel >= bottom ? (axis.min as number) : scale.invert(pixel);
    const area = svg(
      "rect",
      { x: x - 12, y: top - 4, width: 24, height: bottom - top + 8, class: "labtrack-brush-area" },
      group
    );
    area.addEventListener("mousedown", (event) => {
      event.preventDefault();
      const origin = area.getBoundingClientRect().top - (top - 4);
      const start = Math.min(bottom, Math.max(top, event.clientY - origin));
      let moved = false;
      const move = (e: MouseEvent) => {
        const now = Math.min(bottom, Math.max(top, e.clientY - origin));
        moved = moved || Math.abs(now - start) > 3;
        if (!moved) {
          return;
        }
        const a = valueAt(start);
        const b = valueAt(now);
        brushes = { ...brushes, [axis.name]: [Math.min(a, b), Math.max(a, b)] };
        show();
        restyle();
      };
      const up = () => {
        document.removeEventListener("mousemove", move);
        document.removeEventListener("mouseup", up);
        if (!moved) {
          const { [axis.name]: _cleared, ...rest } = brushes;
          brushes = rest;
          show();
          restyle();
        }
        save({ brushes });
      };
      document.addEventListener("mousemove", move);
      document.addEventListener("mouseup", up);
    });
  }

  function renderControls(): void {
    const axes = model.get("axes");
    colorBy.set(
      [{ value: "", label: "run" }, ...axes.map((a) => ({ value: a.name, label: a.name }))],
      model.get("color_by")
    );
    params.set(model.get("available_params"), model.get("params"));
    metrics.set(model.get("available_metrics"), model.get("metrics"));
    error.textContent = model.get("error");
    error.hidden = !model.get("error");
  }

  const onData = () => {
    brushes = { ...model.get("brushes") };
    renderControls();
    draw();
  };
  const onBrushes = () => {
    brushes = { ...model.get("brushes") };
    draw();
  };
  const observer = onWidth(plot, draw);
  onData();
  const events: [string, () => void][] = [
    ["change:axes", onData],
    ["change:values", onData],
    ["change:runs", onData],
    ["change:color_by", onData],
    ["change:available_params", renderControls],
    ["change:available_metrics", renderControls],
    ["change:error", renderControls],
    ["change:brushes", onBrushes],
  ];
  for (const [name, handler] of events) {
    model.on(name, handler);
  }
  return () => {
    observer.disconnect();
    for (const [name, handler] of events) {
      model.off(name, handler);
    }
  };
}

export default { render };
export type { AnyModel };

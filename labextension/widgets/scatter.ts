// Scatter: one point per run, a param or metric against another (SVG); hover a point to read
// its run's name and values.
import type { AnyModel, RenderProps } from "@anywidget/types";
import { colorFor } from "./lib/colors";
import { buttonControl, checkboxControl, selectControl } from "./lib/controls";
import { element } from "./lib/format";
import { toFloat64 } from "./lib/series";
import { IAxisInfo, Tooltip, axisText, onWidth, scaleFor, svg } from "./lib/svg";

interface IRun {
  run_id: string;
  name: string;
  label: string;
  status: string;
}

interface IModel {
  run_ids: string[];
  runs: IRun[];
  x: string;
  y: string;
  log_x: boolean;
  log_y: boolean;
  available: string[];
  x_info: IAxisInfo;
  y_info: IAxisInfo;
  points: DataView;
  error: string;
}

const HEIGHT = 340;
const MARGIN = { top: 16, right: 24, bottom: 44, left: 68 };

function render({ model, el }: RenderProps<IModel>): () => void {
  const root = element("div", "labtrack-widget labtrack-scatter");
  const toolbar = element("div", "labtrack-toolbar");
  const status = element("span", "labtrack-meta");
  const error = element("div", "labtrack-error");
  const plot = element("div", "labtrack-plot");
  const tooltip = new Tooltip(plot);

  const save = (changes: Partial<IModel>) => {
    for (const [name, value] of Object.entries(changes)) {
      model.set(name as keyof IModel, value as never);
    }
    model.save_changes();
  };
  const x = selectControl("x", (value) => save({ x: value }));
  const y = selectControl("y", (value) => save({ y: value }));
  const logX = checkboxControl("log x", (checked) => save({ log_x: checked }));
  const logY = checkboxControl("log y", (checked) => save({ log_y: checked }));
  const refresh = buttonControl("↻", () => model.send({ type: "refresh" }), "Read the runs again");
  toolbar.append(x.root, y.root, logX.root, logY.root, refresh, status);
  root.append(toolbar, error, plot);
  el.appendChild(root);

  function renderControls(): void {
    const options = model.get("available").map((name) => ({ value: name, label: name }));
    for (const [control, name] of [[x, model.get("x")], [y, model.get("y")]] as const) {
      const all = options.some((o) => o.value === name) ? options : [...options, { value: name, label: name }];
      control.set(all, name);
    }
    logX.set(model.get("log_x"));
    logY.set(model.get("log_y"));
    error.textContent = model.get("error");
    error.hidden = !model.get("error");
  }

  function draw(): void {
    tooltip.hide();
    const runs = model.get("runs");
    const points = toFloat64(model.get("points"));
    const xInfo = model.get("x_info");
    const yInfo = model.get("y_info");
    const width = Math.max(plot.clientWidth, 320);
    const chart = svg("svg", { width, height: HEIGHT, class: "labtrack-svg" });
    plot.querySelector("svg")?.remove();
    plot.prepend(chart);
    const left = MARGIN.left;
    const right = width - MARGIN.right;
    const top = MARGIN.top;
    const bottom = HEIGHT - MARGIN.bottom;
    const xScale = scaleFor(xInfo, left, right, model.get("log_x"), true);
    const yScale = scaleFor(yInfo, bottom, top, model.get("log_y"), true);
    const logXOn = model.get("log_x") && xInfo.kind === "numeric" && (xInfo.min ?? 0) > 0;
    const logYOn = model.get("log_y") && yInfo.kind === "numeric" && (yInfo.min ?? 0) > 0;

    const grid = svg("g", { class: "labtrack-axis" }, chart);
    svg("line", { x1: left, x2: right, y1: bottom, y2: bottom }, grid);
    svg("line", { x1: left, x2: left, y1: top, y2: bottom }, grid);
    for (const tick of xScale.ticks) {
      const px = xScale(tick.value);
      if (px < left - 1 || px > right + 1) {
        continue;
      }
      svg("line", { x1: px, x2: px, y1: top, y2: bottom, class: "labtrack-grid" }, grid);
      svg("text", { x: px, y: bottom + 14, "text-anchor": "middle" }, grid).textContent = tick.label;
    }
    for (const tick of yScale.ticks) {
      const py = yScale(tick.value);
      if (py < top - 1 || py > bottom + 1) {
        continue;
      }
      svg("line", { x1: left, x2: right, y1: py, y2: py, class: "labtrack-grid" }, grid);
      svg("text", { x: left - 6, y: py + 3, "text-anchor": "end" }, grid).textContent = tick.label;
    }
    svg("text", { x: (left + right) / 2, y: HEIGHT - 8, "text-anchor": "middle", class: "labtrack-axis-title" }, grid)
      .textContent = xInfo.name + (logXOn ? " (log)" : "");
    svg("text", {
      x: 14,
      y: (top + bottom) / 2,
      "text-anchor": "middle",
      transform: `rotate(-90 14 ${(top + bottom) / 2})`,
      class: "labtrack-axis-title",
    }, grid).textContent = yInfo.name + (logYOn ? " (log)" : "");

    const dots = svg("g", { class: "labtrack-points" }, chart);
    let drawn = 0;
    runs.forEach((run, row) => {
      const vx = points[2 * row];
      const vy = points[2 * row + 1];
      if (!Number.isFinite(vx) || !Number.isFinite(vy) || (logXOn && vx <= 0) || (logYOn && vy <= 0)) {
        return;
      }
      drawn += 1;
      const dot = svg("circle", { cx: xScale(vx), cy: yScale(vy), r: 4.5, fill: colorFor(row), class: "labtrack-point" }, dots);
      dot.dataset.runId = run.run_id;
      dot.addEventListener("mousemove", (event) =>
        tooltip.show(run.label, [[xInfo.name, axisText(xInfo, vx)], [yInfo.name, axisText(yInfo, vy)]], event)
      );
      dot.addEventListener("mouseleave", () => tooltip.hide());
    });
    status.textContent = `${drawn} of ${runs.length} run${runs.length === 1 ? "" : "s"} drawn`;
  }

  const onData = () => {
    renderControls();
    draw();
  };
  const observer = onWidth(plot, draw);
  onData();
  const events: [string, () => void][] = [
    ["change:points", onData],
    ["change:x_info", onData],
    ["change:y_info", onData],
    ["change:runs", onData],
    ["change:log_x", onData],
    ["change:log_y", onData],
    ["change:available", renderControls],
    ["change:error", renderControls],
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

// Series colours, shared by every chart (the kernel's fallbacks use the same list: PALETTE in
// src/labtrack/widgets/_runs.py), so a run keeps its colour from chart to chart.
const PALETTE = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
];

export function colorFor(index: number): string {
  return PALETTE[index % PALETTE.length];
}

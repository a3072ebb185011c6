// Metric series as the kernel sends them: an index (JSON) and one binary buffer of float64s
// holding, for each series, its x values then its y values.

export interface ISeriesEntry {
  run_id: string;
  key: string;
  label: string;
  offset: number; // in float64 elements
  length: number;
  total_points: number;
  resolution: number;
}

export interface ISeries extends ISeriesEntry {
  x: Float64Array;
  y: (number | null)[];
  color?: string; // set by a widget that colours series itself (e.g. one colour per run)
}

export function toFloat64(data: DataView | ArrayBuffer | null | undefined): Float64Array {
  if (!data) {
    return new Float64Array(0);
  }
  if (data instanceof ArrayBuffer) {
    return new Float64Array(data);
  }
  // A DataView over a message buffer may start at any byte: copy when unaligned.
  if (data.byteOffset % 8 === 0) {
    return new Float64Array(data.buffer, data.byteOffset, data.byteLength / 8);
  }
  return new Float64Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
}

export function decodeSeries(index: ISeriesEntry[], data: Float64Array): ISeries[] {
  return index.map((entry) => {
    const x = data.subarray(entry.offset, entry.offset + entry.length);
    const raw = data.subarray(entry.offset + entry.length, entry.offset + 2 * entry.length);
    // uPlot draws null as a gap; NaN and infinities would break its scales.
    const y = Array.from(raw, (v) => (Number.isFinite(v) ? v : null));
    return { ...entry, x, y };
  });
}

/** TensorBoard's debiased exponential moving average; weight in [0, 1). */
export function smooth(values: (number | null)[], weight: number): (number | null)[] {
  if (weight <= 0) {
    return values;
  }
  let last = 0;
  let steps = 0;
  return values.map((v) => {
    if (v === null) {
      return null;
    }
    last = last * weight + (1 - weight) * v;
    steps += 1;
    const debias = 1 - Math.pow(weight, steps);
    return last / debias;
  });
}

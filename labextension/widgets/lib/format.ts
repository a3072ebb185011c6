// Small, shared display helpers.

export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) {
    return "NaN";
  }
  if (!Number.isFinite(value)) {
    return value > 0 ? "∞" : "−∞";
  }
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e6)) {
    return value.toExponential(3);
  }
  return Number(value.toPrecision(5)).toString();
}

export function formatDuration(milliseconds: number): string {
  const seconds = Math.max(0, Math.round(milliseconds / 1000));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (h) {
    return `${h}h ${m}m ${s}s`;
  }
  return m ? `${m}m ${s}s` : `${s}s`;
}

/**
 * A run id short enough for a label: its last 8 hex digits. labtrack's run ids are UUIDv7,
 * whose first digits are the creation time and so the same for runs started together; the
 * last ones are random (in MLflow's UUIDv4 ids too).
 */
export function shortRunId(runId: string): string {
  return runId.slice(-8);
}

export function formatTime(milliseconds: number | null | undefined): string {
  if (!milliseconds) {
    return "";
  }
  return new Date(milliseconds).toLocaleString();
}

export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

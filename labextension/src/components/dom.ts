// Small DOM helpers shared by the panel's views (the notebook widgets' `element` and
// formatters come from widgets/lib, so both show numbers and times alike).
import { formatDuration, formatNumber } from '../../widgets/lib/format';
import { toNumber } from '../model';
import { IRunInfo, WireNumber } from '../tokens';

type Child = Node | string | null | undefined | false;

/** `h('div', {className: 'x', onclick}, child, …)`: an element with properties set. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<Omit<HTMLElementTagNameMap[K], 'style' | 'dataset'>> & {
    dataset?: Record<string, string>;
    style?: Partial<CSSStyleDeclaration>;
  } = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  const { dataset, style, ...rest } = props;
  Object.assign(node, rest);
  if (dataset) {
    Object.assign(node.dataset, dataset);
  }
  if (style) {
    Object.assign(node.style, style);
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child);
    }
  }
  return node;
}

export function button(
  label: string,
  onClick: (event: MouseEvent) => void,
  options: { className?: string; title?: string; disabled?: boolean } = {}
): HTMLButtonElement {
  const node = h('button', {
    type: 'button',
    className: `jp-Labtrack-button ${options.className ?? ''}`.trim(),
    title: options.title ?? '',
    disabled: options.disabled ?? false,
    textContent: label
  });
  node.addEventListener('click', event => {
    event.stopPropagation();
    onClick(event);
  });
  return node;
}

/** A message in place of content: an error (red) or a quiet note. */
export function message(text: string, kind: 'error' | 'note' | 'ok' = 'note'): HTMLElement {
  return h('div', {
    className: `jp-Labtrack-message jp-mod-${kind}`,
    textContent: text,
    role: kind === 'error' ? 'alert' : 'status'
  });
}

export function statusPill(status: string): HTMLElement {
  return h('span', { className: 'jp-Labtrack-status', textContent: status, dataset: { status } });
}

/** The status as a coloured dot (for narrow tables); the word is its tooltip. */
export function statusDot(status: string): HTMLElement {
  const dot = h('span', { className: 'jp-Labtrack-status jp-mod-dot', title: status, dataset: { status } });
  dot.setAttribute('aria-label', status);
  return dot;
}

export function stagePill(stage: string, text?: string): HTMLElement {
  return h('span', {
    className: 'jp-Labtrack-stage',
    textContent: text ?? stage,
    dataset: { stage: stage || 'None' }
  });
}

export function formatValue(value: WireNumber | number | undefined): string {
  if (value === undefined) {
    return '';
  }
  return formatNumber(toNumber(value));
}

/** "3 min ago", "yesterday", or the date, for a start time. */
export function formatAgo(ms: number | undefined, now = Date.now()): string {
  if (!ms) {
    return '';
  }
  const seconds = Math.round((now - ms) / 1000);
  if (seconds < 45) {
    return 'just now';
  }
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) {
    return `${minutes} min ago`;
  }
  const hours = Math.round(minutes / 60);
  if (hours < 24) {
    return `${hours} h ago`;
  }
  const days = Math.round(hours / 24);
  if (days < 7) {
    return days === 1 ? 'yesterday' : `${days} days ago`;
  }
  return new Date(ms).toLocaleDateString();
}

export function formatDate(ms: number | undefined): string {
  return ms ? new Date(ms).toLocaleString() : '';
}

/** How long a run took (or has been running). */
export function runDuration(info: IRunInfo, now = Date.now()): string {
  if (!info.start_time) {
    return '';
  }
  const end = info.end_time ?? (info.status === 'RUNNING' ? now : undefined);
  return end === undefined ? '' : formatDuration(end - info.start_time);
}

/** A table of [name, value] rows. */
export function keyValueTable(
  rows: [string, Node | string][],
  className = 'jp-Labtrack-kv'
): HTMLTableElement {
  const table = h('table', { className });
  const body = h('tbody');
  for (const [name, value] of rows) {
    body.append(h('tr', {}, h('th', { textContent: name }), h('td', {}, value)));
  }
  table.append(body);
  return table;
}

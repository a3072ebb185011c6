// RunsTable's logic without the DOM: column keys and how they are written in the search
// grammar, sort cycling, selection by click / shift-click / ctrl-click, cell text.
import { formatNumber } from "./format";

export type Cell = string | number | boolean | null;
export type SortKey = [string, boolean]; // [column, ascending]

/** Positions every row starts with (see ROW_PREFIX in runs_table.py). */
export const RUN_ID = 0;
export const RUN_NAME = 1;
export const STATUS = 2;
export const START = 3;
export const END = 4;
export const PREFIX_LENGTH = 5;

/** What the store sorts by when order_by is empty. */
export const DEFAULT_SORT: SortKey[] = [["attributes.start_time", false]];

/** Attributes the search grammar can sort and filter by. */
export const SEARCHABLE_ATTRIBUTES = [
  "attributes.run_name",
  "attributes.status",
  "attributes.start_time",
  "attributes.end_time",
  "attributes.user_id",
  "attributes.run_id",
  "attributes.artifact_uri",
];

export type Kind = "attributes" | "metrics" | "params" | "tags";

export function splitColumn(column: string): { kind: Kind; key: string } {
  const dot = column.indexOf(".");
  return { kind: column.slice(0, dot) as Kind, key: column.slice(dot + 1) };
}

export function isSortable(column: string): boolean {
  const { kind } = splitColumn(column);
  return kind !== "attributes" || SEARCHABLE_ATTRIBUTES.includes(column);
}

/** ``metrics.acc``, or ``metrics.`val loss``` when the key is not a bare word. */
export function writeColumn(column: string): string {
  const { kind, key } = splitColumn(column);
  if (/^[A-Za-z0-9_.\-/:]+$/.test(key)) {
    return `${kind}.${key}`;
  }
  if (!key.includes("`")) {
    return `${kind}.\`${key}\``;
  }
  return `${kind}."${key.replace(/"/g, '""')}"`;
}

export function orderByClauses(keys: SortKey[]): string[] {
  return keys.map(([column, ascending]) => `${writeColumn(column)} ${ascending ? "ASC" : "DESC"}`);
}

/** Metrics and times sort highest / newest first; names, params and tags A to Z. */
export function firstDirection(column: string): boolean {
  const { kind, key } = splitColumn(column);
  return !(kind === "metrics" || (kind === "attributes" && key.endsWith("_time")));
}

/**
 * The sort after a click on a column header: its first direction, then the other, then back
 * to the default order. With ``additive`` (shift-click) the column is added to, flipped in or
 * removed from the current keys instead.
 */
export function nextSort(current: SortKey[], column: string, additive: boolean): SortKey[] {
  const effective = current.length ? current : DEFAULT_SORT;
  const first = firstDirection(column);
  const index = effective.findIndex(([c]) => c === column);
  if (additive) {
    const base = current.slice();
    const at = base.findIndex(([c]) => c === column);
    if (at < 0) {
      return [...base, [column, first]];
    }
    if (base[at][1] === first) {
      base[at] = [column, !first];
      return base;
    }
    base.splice(at, 1);
    return base;
  }
  if (effective.length === 1 && index === 0) {
    return effective[0][1] === first ? [[column, !first]] : [];
  }
  return [[column, first]];
}

export type ClickMode = "replace" | "toggle" | "range" | "range-add";

export interface ISelection {
  selected: string[];
  anchor: number | null;
}

/** The selection after a click on row ``index`` of ``ids`` (the run ids in table order). */
export function clickSelection(
  state: ISelection,
  ids: string[],
  index: number,
  mode: ClickMode
): ISelection {
  const id = ids[index];
  if (mode === "replace") {
    const only = state.selected.length === 1 && state.selected[0] === id;
    return { selected: only ? [] : [id], anchor: index };
  }
  if (mode === "toggle") {
    const selected = state.selected.includes(id)
      ? state.selected.filter((s) => s !== id)
      : [...state.selected, id];
    return { selected, anchor: index };
  }
  const anchor = state.anchor !== null && state.anchor < ids.length ? state.anchor : index;
  const [from, to] = anchor <= index ? [anchor, index] : [index, anchor];
  const range = ids.slice(from, to + 1);
  if (mode === "range") {
    return { selected: range, anchor };
  }
  const have = new Set(state.selected);
  return { selected: [...state.selected, ...range.filter((r) => !have.has(r))], anchor };
}

/** All rows selected → none of them; otherwise all of them (keeping runs not shown). */
export function toggleAll(selected: string[], ids: string[]): string[] {
  const have = new Set(selected);
  if (ids.length && ids.every((id) => have.has(id))) {
    const shown = new Set(ids);
    return selected.filter((id) => !shown.has(id));
  }
  return [...selected, ...ids.filter((id) => !have.has(id))];
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

/** ``14:03:12`` today, ``2026-11-03 14:03`` on other days. */
export function formatStart(milliseconds: Cell, now: Date = new Date()): string {
  if (typeof milliseconds !== "number" || !milliseconds) {
    return "";
  }
  const d = new Date(milliseconds);
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (d.toDateString() === now.toDateString()) {
    return `${time}:${pad(d.getSeconds())}`;
  }
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

/** What a cell of ``column`` shows; missing values (and NaN, sent as null) show nothing. */
export function cellText(column: string, value: Cell, names: Record<string, string>): string {
  if (value === null || value === undefined) {
    return "";
  }
  const { kind, key } = splitColumn(column);
  if (kind === "metrics" && typeof value === "number") {
    return formatNumber(value);
  }
  if (kind === "attributes" && key.endsWith("_time")) {
    return formatStart(value);
  }
  if (kind === "attributes" && key === "experiment_id") {
    return names[String(value)] ?? String(value);
  }
  return String(value);
}

/** The word being typed at ``caret`` in a filter, for completion. */
export function wordAt(text: string, caret: number): { start: number; word: string } {
  const before = text.slice(0, caret);
  const match = /[A-Za-z_][\w.\-/:]*$/.exec(before);
  return match ? { start: match.index, word: match[0] } : { start: caret, word: "" };
}

/** Column keys completing ``word``: prefix matches first, then keys containing it. */
export function completions(word: string, columns: string[], limit = 8): string[] {
  if (!word) {
    return [];
  }
  const lower = word.toLowerCase();
  const starts: string[] = [];
  const contains: string[] = [];
  for (const column of columns) {
    const text = column.toLowerCase();
    const { key } = splitColumn(text);
    if (text === lower) {
      continue;
    }
    if (text.startsWith(lower) || key.startsWith(lower)) {
      starts.push(column);
    } else if (lower.length > 1 && text.includes(lower)) {
      contains.push(column);
    }
  }
  return [...starts, ...contains].slice(0, limit);
}

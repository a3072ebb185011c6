// RunsTable: thousands of runs in a virtualized table. Only the rows in view are in the DOM
// (fixed row height, recycled row elements); the header sticks while the body scrolls.
// Sorting and filtering happen in the kernel (order_by / filter_string traits); columns and
// the selection are traits too, so the next cell reads what the user chose.
import type { RenderProps } from "@anywidget/types";
import { element, formatDuration, shortRunId } from "./lib/format";
import {
  Cell,
  cellText,
  clickSelection,
  ClickMode,
  completions,
  DEFAULT_SORT,
  END,
  formatStart,
  isSortable,
  ISelection,
  nextSort,
  orderByClauses,
  PREFIX_LENGTH,
  RUN_ID,
  RUN_NAME,
  SEARCHABLE_ATTRIBUTES,
  SortKey,
  splitColumn,
  START,
  STATUS,
  toggleAll,
  wordAt,
  writeColumn,
} from "./lib/runs_table_model";

interface IModel {
  experiment_ids: string[];
  experiment_names: Record<string, string>;
  filter_string: string;
  order_by: string[];
  sort_keys: SortKey[];
  max_runs: number;
  row_columns: string[];
  rows: Cell[][];
  truncated: boolean;
  available_columns: string[];
  columns: string[];
  selected_run_ids: string[];
  loading: boolean;
  error: string;
}

const ROW_HEIGHT = 28; // px; also in runs_table.css
const HEADER_HEIGHT = 40; // px; also in runs_table.css
const OVERSCAN = 8; // rows rendered beyond each edge of the view
const AUTO_HEIGHT = 15; // rows shown before the table scrolls, until the user drags the grip
const CHOOSER_LIMIT = 200; // options listed per kind before the search box is needed
const KIND_LABELS: Record<string, string> = { metrics: "metric", params: "param", tags: "tag" };
const WIDTHS: Record<string, number> = {
  select: 34, status: 92, run: 240, start: 146, duration: 84,
  metrics: 110, params: 120, tags: 140, attributes: 150,
  "attributes.artifact_uri": 320, "attributes.run_id": 270,
};

interface IColumn {
  id: string;
  kind: string; // small label above the name
  label: string;
  title: string;
  sortKey: string | null;
  numeric: boolean;
  removable: boolean; // a chosen column: its header can hide it
  fill(cell: HTMLElement, row: Cell[], now: number): void;
}

function text(cell: HTMLElement, value: string, title?: string): void {
  if (cell.textContent !== value) {
    cell.textContent = value;
  }
  cell.title = title ?? value;
}

function render({ model, el, experimental }: RenderProps<IModel>): () => void {
  const root = element("div", "labtrack-widget labtrack-runs");
  const header = element("div", "labtrack-header");
  const title = element("span", "labtrack-title", "Runs");
  const experiments = element("span", "labtrack-meta");
  header.append(title, experiments);

  const toolbar = element("div", "labtrack-rt-toolbar");
  const filterBox = element("div", "labtrack-rt-filter");
  const filter = element("input", "labtrack-rt-filter-input");
  filter.type = "text";
  filter.spellcheck = false;
  filter.placeholder = "Filter: metrics.acc > 0.9 AND params.model = 'cnn'   (Enter to apply)";
  filter.setAttribute("aria-label", "Filter runs with the search grammar");
  const clearFilter = element("button", "labtrack-rt-icon", "×");
  clearFilter.title = "Clear the filter";
  const suggest = element("ul", "labtrack-rt-suggest");
  suggest.hidden = true;
  filterBox.append(filter, clearFilter, suggest);
  const chooseButton = element("button", "labtrack-rt-button", "Columns");
  chooseButton.title = "Choose the param, metric and tag columns";
  const refreshButton = element("button", "labtrack-rt-button", "⟳");
  refreshButton.title = "Search again";
  toolbar.append(filterBox, chooseButton, refreshButton);

  const error = element("div", "labtrack-error");
  const summary = element("div", "labtrack-rt-summary");
  const count = element("span", "labtrack-rt-count");
  const selectionInfo = element("span", "labtrack-rt-selection");
  const selectionText = element("span");
  const clearSelection = element("button", "labtrack-rt-link", "clear");
  const copySelection = element("button", "labtrack-rt-link", "copy ids");
  selectionInfo.append(selectionText, clearSelection, copySelection);
  const loading = element("span", "labtrack-rt-loading", "searching…");
  const truncated = element("span", "labtrack-rt-truncated");
  summary.append(count, selectionInfo, loading, truncated);

  const chooser = element("div", "labtrack-rt-chooser");
  chooser.hidden = true;

  const viewport = element("div", "labtrack-rt-viewport");
  viewport.tabIndex = 0;
  viewport.setAttribute("role", "grid");
  viewport.setAttribute("aria-multiselectable", "true");
  const head = element("div", "labtrack-rt-head");
  head.setAttribute("role", "row");
  const body = element("div", "labtrack-rt-body");
  const empty = element("div", "labtrack-rt-empty");
  body.appendChild(empty);
  viewport.append(head, body);
  const grip = element("div", "labtrack-rt-grip");
  grip.title = "Drag to show more or fewer rows";

  root.append(header, toolbar, error, summary, chooser, viewport, grip);
  // Keys typed in the table, the filter or the chooser are the widget's, not JupyterLab's
  // notebook shortcuts ("a", "d d", arrows, Enter …).
  for (const node of [viewport, filterBox, chooser]) {
    node.setAttribute("data-lm-suppress-shortcuts", "true");
  }
  el.appendChild(root);

  // -- state ---------------------------------------------------------------------------------
  let columns: IColumn[] = [];
  let rows: Cell[][] = [];
  let ids: string[] = [];
  let selected = new Set<string>();
  let selection: ISelection = { selected: [], anchor: null };
  let cursor = -1;
  let idSet = new Set<string>();
  let columnsKey = "";
  let userHeight: number | null = null;
  let suggestions: string[] = [];
  let suggestionIndex = -1; // -1: the user has not picked a completion with the arrows
  const widths = new Map<string, number>();
  const shown = new Map<number, HTMLDivElement>();
  const free: HTMLDivElement[] = [];

  // -- columns -------------------------------------------------------------------------------
  function buildColumns(): IColumn[] {
    const names = model.get("experiment_names");
    const fixed: IColumn[] = [
      {
        id: "select", kind: "", label: "", title: "Select", sortKey: null, numeric: false,
        removable: false,
        fill(cell, row) {
          const box = cell.firstChild as HTMLInputElement;
          box.checked = selected.has(row[RUN_ID] as string);
        },
      },
      {
        id: "status", kind: "", label: "Status", title: "attributes.status",
        sortKey: "attributes.status", numeric: false, removable: false,
        fill(cell, row) {
          const pill = cell.firstChild as HTMLElement;
          const status = String(row[STATUS] ?? "");
          pill.dataset.status = status;
          text(pill, status);
        },
      },
      {
        id: "run", kind: "", label: "Run", title: "attributes.run_name",
        sortKey: "attributes.run_name", numeric: false, removable: false,
        fill(cell, row) {
          const [name, id] = cell.children as unknown as HTMLElement[];
          const runId = String(row[RUN_ID]);
          text(name, String(row[RUN_NAME] ?? ""));
          text(id, shortRunId(runId), runId);
        },
      },
      {
        id: "start", kind: "", label: "Started", title: "attributes.start_time",
        sortKey: "attributes.start_time", numeric: false, removable: false,
        fill(cell, row) {
          const start = row[START];
          text(cell, formatStart(start),
            typeof start === "number" ? new Date(start).toLocaleString() : "");
        },
      },
      {
        id: "duration", kind: "", label: "Duration",
        title: "End minus start (the search grammar cannot sort by it)",
        sortKey: null, numeric: true, removable: false,
        fill(cell, row, now) {
          const start = row[START];
          const end = row[END] || (row[STATUS] === "RUNNING" ? now : null);
          text(cell, typeof start === "number" && typeof end === "number"
            ? formatDuration(end - start) : "");
        },
      },
    ];
    const chosen = model.get("row_columns").slice(PREFIX_LENGTH).map((key, j): IColumn => {
      const { kind, key: name } = splitColumn(key);
      const index = PREFIX_LENGTH + j;
      return {
        id: key, kind: KIND_LABELS[kind] ?? "", label: name,
        title: key, sortKey: isSortable(key) ? key : null, numeric: kind === "metrics",
        removable: true,
        fill(cell, row) {
          const value = cellText(key, row[index], names);
          const raw = row[index];
          text(cell, value, kind === "metrics" && typeof raw === "number" ? String(raw) : value);
        },
      };
    });
    return [...fixed, ...chosen];
  }

  function widthOf(column: IColumn): number {
    return widths.get(column.id) ?? WIDTHS[column.id] ??
      WIDTHS[splitColumn(column.id).kind] ?? 120;
  }

  function applyWidths(): void {
    const template = columns.map((c) => `${widthOf(c)}px`).join(" ");
    const total = columns.reduce((sum, c) => sum + widthOf(c), 0);
    root.style.setProperty("--labtrack-rt-columns", template);
    root.style.setProperty("--labtrack-rt-width", `${total}px`);
  }

  // -- header --------------------------------------------------------------------------------
  const selectAll = element("input");
  selectAll.type = "checkbox";
  selectAll.title = "Select all runs in the table (again: none)";

  function renderHead(): void {
    const sortKeys = model.get("sort_keys");
    const effective = sortKeys.length ? sortKeys : DEFAULT_SORT;
    head.replaceChildren();
    columns.forEach((column) => {
      const cell = element("div", "labtrack-rt-th");
      cell.setAttribute("role", "columnheader");
      cell.dataset.column = column.id;
      if (column.numeric) {
        cell.classList.add("labtrack-rt-num");
      }
      if (column.id === "select") {
        cell.appendChild(selectAll);
        head.appendChild(cell);
        return;
      }
      cell.title = column.sortKey
        ? `${column.title}\nClick to sort, shift-click to add to the sort`
        : column.title;
      const kind = element("span", "labtrack-rt-kind", column.kind);
      if (column.kind) {
        kind.dataset.kind = column.kind;
      }
      const label = element("span", "labtrack-rt-label", column.label);
      const sortAt = column.sortKey ? effective.findIndex(([c]) => c === column.sortKey) : -1;
      const arrow = element("span", "labtrack-rt-sort");
      if (sortAt >= 0) {
        const ascending = effective[sortAt][1];
        arrow.textContent = (ascending ? "▲" : "▼") +
          (effective.length > 1 ? String(sortAt + 1) : "");
        cell.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        cell.classList.toggle("labtrack-rt-implicit", !sortKeys.length);
      }
      const name = element("div", "labtrack-rt-name");
      name.append(label, arrow);
      cell.append(kind, name);
      if (column.sortKey) {
        cell.classList.add("labtrack-rt-sortable");
      }
      if (column.removable) {
        const hide = element("button", "labtrack-rt-hide", "×");
        hide.title = `Hide ${column.title}`;
        hide.dataset.hide = column.id;
        cell.appendChild(hide);
      }
      const resize = element("span", "labtrack-rt-resize");
      resize.dataset.resize = column.id;
      cell.appendChild(resize);
      head.appendChild(cell);
    });
    renderSelectAll();
  }

  function renderSelectAll(): void {
    const inView = ids.filter((id) => selected.has(id)).length;
    selectAll.checked = ids.length > 0 && inView === ids.length;
    selectAll.indeterminate = inView > 0 && inView < ids.length;
  }

  head.addEventListener("click", (event) => {
    const target = event.target as HTMLElement;
    if (target === selectAll) {
      setSelection(toggleAll(selection.selected, ids), selection.anchor);
      return;
    }
    if (target.dataset.hide) {
      event.stopPropagation();
      setColumns(model.get("columns").filter((c) => c !== target.dataset.hide));
      return;
    }
    if (target.dataset.resize) {
      return;
    }
    const cell = target.closest<HTMLElement>(".labtrack-rt-th");
    const column = columns.find((c) => c.id === cell?.dataset.column);
    if (!column?.sortKey) {
      return;
    }
    const keys = nextSort(model.get("sort_keys"), column.sortKey, event.shiftKey);
    model.set("order_by", orderByClauses(keys));
    model.save_changes();
  });

  head.addEventListener("pointerdown", (event) => {
    const handle = event.target as HTMLElement;
    const id = handle.dataset.resize;
    const column = columns.find((c) => c.id === id);
    if (!id || !column) {
      return;
    }
    event.preventDefault();
    const startX = event.clientX;
    const startWidth = widthOf(column);
    handle.setPointerCapture(event.pointerId);
    const move = (e: PointerEvent) => {
      widths.set(id, Math.max(40, Math.round(startWidth + e.clientX - startX)));
      applyWidths();
    };
    const up = () => {
      handle.removeEventListener("pointermove", move);
      handle.removeEventListener("pointerup", up);
      handle.removeEventListener("pointercancel", up);
    };
    handle.addEventListener("pointermove", move);
    handle.addEventListener("pointerup", up);
    handle.addEventListener("pointercancel", up);
  });

  // -- rows (virtualized) --------------------------------------------------------------------
  function makeRow(): HTMLDivElement {
    const row = element("div", "labtrack-rt-row");
    row.setAttribute("role", "row");
    for (const column of columns) {
      const cell = element("div", "labtrack-rt-td");
      cell.setAttribute("role", "gridcell");
      if (column.numeric) {
        cell.classList.add("labtrack-rt-num");
      }
      if (column.id === "select") {
        const box = element("input");
        box.type = "checkbox";
        box.tabIndex = -1;
        cell.appendChild(box);
      } else if (column.id === "status") {
        cell.appendChild(element("span", "labtrack-status"));
      } else if (column.id === "run") {
        cell.append(element("span", "labtrack-rt-run-name"), element("span", "labtrack-rt-run-id"));
      }
      row.appendChild(cell);
    }
    body.appendChild(row);
    return row;
  }

  function dropRows(): void {
    for (const row of [...shown.values(), ...free]) {
      row.remove();
    }
    shown.clear();
    free.length = 0;
  }

  function fillRow(row: HTMLDivElement, index: number, now: number): void {
    const data = rows[index];
    row.dataset.index = String(index);
    row.style.transform = `translateY(${index * ROW_HEIGHT}px)`;
    const isSelected = selected.has(data[RUN_ID] as string);
    row.classList.toggle("labtrack-rt-selected", isSelected);
    row.classList.toggle("labtrack-rt-cursor", index === cursor);
    row.classList.toggle("labtrack-rt-odd", index % 2 === 1);
    row.setAttribute("aria-selected", String(isSelected));
    row.setAttribute("aria-rowindex", String(index + 2));
    const cells = row.children;
    for (let c = 0; c < columns.length; c++) {
      columns[c].fill(cells[c] as HTMLElement, data, now);
    }
  }

  /** Show exactly the rows in view (plus overscan); ``refill`` redraws those already shown. */
  function paint(refill = false): void {
    const total = rows.length;
    const top = viewport.scrollTop;
    const height = viewport.clientHeight || AUTO_HEIGHT * ROW_HEIGHT;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(total, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);
    for (const [index, row] of shown) {
      if (index < first || index >= last) {
        shown.delete(index);
        row.hidden = true;
        free.push(row);
      }
    }
    const now = Date.now();
    for (let index = first; index < last; index++) {
      let row = shown.get(index);
      if (row) {
        if (refill) {
          fillRow(row, index, now);
        }
        continue;
      }
      row = free.pop() ?? makeRow();
      row.hidden = false;
      shown.set(index, row);
      fillRow(row, index, now);
    }
    body.dataset.rendered = String(shown.size);
  }

  let paintFrame = 0;
  viewport.addEventListener("scroll", () => {
    if (!paintFrame) {
      paintFrame = requestAnimationFrame(() => {
        paintFrame = 0;
        paint();
      });
    }
  }, { passive: true });

  // The view's height is only known once the output is attached and laid out.
  const resizeObserver = new ResizeObserver(() => paint());
  resizeObserver.observe(viewport);

  function sizeViewport(): void {
    const rowsShown = Math.max(2, Math.min(rows.length, AUTO_HEIGHT));
    const auto = rowsShown * ROW_HEIGHT + HEADER_HEIGHT + 16; // room for a scrollbar
    viewport.style.height = `${userHeight ?? auto}px`;
    body.style.height = `${Math.max(rows.length, rows.length ? 0 : 2) * ROW_HEIGHT}px`;
    viewport.setAttribute("aria-rowcount", String(rows.length + 1));
  }

  grip.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    const startY = event.clientY;
    const startHeight = viewport.offsetHeight;
    grip.setPointerCapture(event.pointerId);
    const move = (e: PointerEvent) => {
      userHeight = Math.max(3 * ROW_HEIGHT, Math.round(startHeight + e.clientY - startY));
      viewport.style.height = `${userHeight}px`;
      paint();
    };
    const up = () => {
      grip.removeEventListener("pointermove", move);
      grip.removeEventListener("pointerup", up);
    };
    grip.addEventListener("pointermove", move);
    grip.addEventListener("pointerup", up);
  });

  // -- selection -----------------------------------------------------------------------------
  function setSelection(next: string[], anchor: number | null): void {
    selection = { selected: next, anchor };
    selected = new Set(next);
    model.set("selected_run_ids", next);
    model.save_changes();
    paint(true);
    renderSelectAll();
    renderSummary();
  }

  function syncSelection(): void {
    const next = model.get("selected_run_ids");
    selection = { selected: next, anchor: selection.anchor };
    selected = new Set(next);
    paint(true);
    renderSelectAll();
    renderSummary();
  }

  body.addEventListener("mousedown", (event) => {
    if (event.shiftKey) {
      event.preventDefault(); // a shift-click selects rows, not text
    }
  });

  body.addEventListener("click", (event) => {
    const target = event.target as HTMLElement;
    const row = target.closest<HTMLElement>(".labtrack-rt-row");
    if (!row) {
      return;
    }
    const index = Number(row.dataset.index);
    const additive = event.ctrlKey || event.metaKey;
    let mode: ClickMode;
    if (event.shiftKey) {
      mode = additive || target instanceof HTMLInputElement ? "range-add" : "range";
    } else if (additive || target instanceof HTMLInputElement) {
      mode = "toggle";
    } else if (window.getSelection()?.toString()) {
      return; // the user selected some text to copy
    } else {
      mode = "replace";
    }
    cursor = index;
    const next = clickSelection(selection, ids, index, mode);
    setSelection(next.selected, next.anchor);
    viewport.focus({ preventScroll: true });
  });

  function moveCursor(to: number, extend: boolean): void {
    if (!ids.length) {
      return;
    }
    const from = cursor;
    cursor = Math.max(0, Math.min(ids.length - 1, to));
    const top = cursor * ROW_HEIGHT;
    const visible = viewport.clientHeight - HEADER_HEIGHT;
    if (top < viewport.scrollTop) {
      viewport.scrollTop = top;
    } else if (top + ROW_HEIGHT > viewport.scrollTop + visible) {
      viewport.scrollTop = top + ROW_HEIGHT - visible;
    }
    if (extend) {
      const anchor = selection.anchor ?? (from >= 0 ? from : cursor);
      const next = clickSelection({ selected: selection.selected, anchor }, ids, cursor, "range");
      setSelection(next.selected, next.anchor);
    } else {
      selection = { selected: selection.selected, anchor: cursor }; // shift+arrows extend from here
      paint(true);
    }
  }

  viewport.addEventListener("keydown", (event) => {
    const page = Math.max(1, Math.floor((viewport.clientHeight - HEADER_HEIGHT) / ROW_HEIGHT));
    switch (event.key) {
      case "ArrowDown":
        moveCursor(cursor + 1, event.shiftKey);
        break;
      case "ArrowUp":
        moveCursor(cursor - 1, event.shiftKey);
        break;
      case "PageDown":
        moveCursor(cursor + page, event.shiftKey);
        break;
      case "PageUp":
        moveCursor(cursor - page, event.shiftKey);
        break;
      case "Home":
        moveCursor(0, event.shiftKey);
        break;
      case "End":
        moveCursor(ids.length - 1, event.shiftKey);
        break;
      case " ":
      case "Enter":
        if (cursor >= 0 && cursor < ids.length) {
          const next = clickSelection(selection, ids, cursor,
            event.key === " " ? "toggle" : "replace");
          setSelection(next.selected, next.anchor);
        }
        break;
      case "Escape":
        setSelection([], null);
        break;
      case "a":
        if (!(event.ctrlKey || event.metaKey)) {
          return;
        }
        setSelection(toggleAll(selection.selected, ids), selection.anchor);
        break;
      default:
        return;
    }
    event.preventDefault();
    event.stopPropagation(); // keep JupyterLab's notebook shortcuts out of the table
  });

  clearSelection.addEventListener("click", () => setSelection([], null));
  copySelection.addEventListener("click", () => {
    const say = (what: string) => {
      copySelection.textContent = what;
      setTimeout(() => (copySelection.textContent = "copy ids"), 1500);
    };
    // The clipboard exists only in secure contexts (https, localhost).
    const copied = navigator.clipboard?.writeText(selection.selected.join("\n"));
    if (!copied) {
      say("no clipboard here");
      return;
    }
    copied.then(() => say("copied"), () => say("copy refused"));
  });

  // -- filter --------------------------------------------------------------------------------
  function searchableColumns(): string[] {
    const available = model.get("available_columns").filter(
      (c) => splitColumn(c).kind !== "attributes");
    return [...SEARCHABLE_ATTRIBUTES, ...available];
  }

  function applyFilter(value: string): void {
    closeSuggestions();
    model.set("filter_string", value.trim());
    model.save_changes();
    renderFilterState();
  }

  function renderFilterState(): void {
    const edited = filter.value.trim() !== model.get("filter_string");
    filterBox.classList.toggle("labtrack-rt-edited", edited);
    filterBox.classList.toggle("labtrack-rt-invalid",
      !edited && /filter/i.test(model.get("error")));
    clearFilter.hidden = !filter.value;
  }

  function closeSuggestions(): void {
    suggestions = [];
    suggest.hidden = true;
  }

  function renderSuggestions(): void {
    const caret = filter.selectionStart ?? filter.value.length;
    const { word } = wordAt(filter.value, caret);
    // No completion inside a quoted value.
    const inString = (filter.value.slice(0, caret).match(/'/g) ?? []).length % 2 === 1;
    suggestions = inString ? [] : completions(word, searchableColumns());
    suggestionIndex = -1;
    suggest.replaceChildren(...suggestions.map((s, i) => {
      const item = element("li", undefined, s);
      item.dataset.index = String(i);
      return item;
    }));
    suggest.hidden = !suggestions.length;
  }

  function accept(index: number): void {
    const caret = filter.selectionStart ?? filter.value.length;
    const { start } = wordAt(filter.value, caret);
    const written = writeColumn(suggestions[index]) + " ";
    filter.value = filter.value.slice(0, start) + written + filter.value.slice(caret);
    const at = start + written.length;
    filter.setSelectionRange(at, at);
    closeSuggestions();
    renderFilterState();
    filter.focus();
  }

  filter.addEventListener("input", () => {
    renderSuggestions();
    renderFilterState();
  });
  filter.addEventListener("keydown", (event) => {
    event.stopPropagation(); // typing in the box must not trigger notebook shortcuts
    const open = !suggest.hidden && suggestions.length > 0;
    if (open && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      suggestionIndex = suggestionIndex < 0 ? (step > 0 ? 0 : suggestions.length - 1)
        : (suggestionIndex + step + suggestions.length) % suggestions.length;
      Array.from(suggest.children).forEach((item, i) =>
        item.classList.toggle("labtrack-rt-active", i === suggestionIndex));
    } else if (open && event.key === "Tab") {
      event.preventDefault();
      accept(Math.max(0, suggestionIndex));
    } else if (event.key === "Enter") {
      event.preventDefault();
      if (open && suggestionIndex >= 0) {
        accept(suggestionIndex); // picked with the arrows
      } else {
        applyFilter(filter.value);
      }
    } else if (event.key === "Escape") {
      if (open) {
        closeSuggestions();
      } else {
        filter.value = model.get("filter_string");
        renderFilterState();
      }
    }
  });
  filter.addEventListener("blur", () => setTimeout(() => {
    if (document.activeElement !== filter) {
      closeSuggestions(); // a click on a suggestion keeps the focus (see mousedown below)
    }
  }, 150));
  suggest.addEventListener("mousedown", (event) => {
    event.preventDefault(); // keep the focus in the box
    const item = (event.target as HTMLElement).closest("li");
    if (item) {
      accept(Number(item.dataset.index));
    }
  });
  clearFilter.addEventListener("click", () => {
    filter.value = "";
    applyFilter("");
  });

  // -- column chooser ------------------------------------------------------------------------
  const chooserSearch = element("input", "labtrack-rt-chooser-search");
  chooserSearch.type = "text";
  chooserSearch.placeholder = "Find a column";
  const chooserList = element("div", "labtrack-rt-chooser-list");
  chooser.append(chooserSearch, chooserList);

  function setColumns(next: string[]): void {
    model.set("columns", next);
    model.save_changes();
  }

  function renderChooser(): void {
    if (chooser.hidden) {
      return;
    }
    const chosen = model.get("columns");
    const isChosen = new Set(chosen);
    const query = chooserSearch.value.trim().toLowerCase();
    const all = [...model.get("available_columns"),
      ...chosen.filter((c) => !model.get("available_columns").includes(c))];
    const groups: Record<string, string[]> = { attributes: [], metrics: [], params: [], tags: [] };
    for (const column of all) {
      if (!query || column.toLowerCase().includes(query)) {
        groups[splitColumn(column).kind]?.push(column);
      }
    }
    const scroll = chooserList.scrollTop;
    const focused = chooser.contains(document.activeElement);
    chooserList.replaceChildren();
    for (const [kind, keys] of Object.entries(groups)) {
      if (!keys.length) {
        continue;
      }
      const group = element("div", "labtrack-rt-group");
      const heading = element("div", "labtrack-rt-group-title");
      const name = element("span", undefined, `${kind[0].toUpperCase()}${kind.slice(1)}`);
      const some = keys.some((k) => isChosen.has(k));
      const toggle = element("button", "labtrack-rt-link", some ? "none" : "all");
      toggle.addEventListener("click", () => {
        const set = new Set(keys);
        setColumns(some ? chosen.filter((c) => !set.has(c))
          : [...chosen, ...keys.filter((k) => !isChosen.has(k))]);
      });
      heading.append(name, toggle);
      group.appendChild(heading);
      for (const key of keys.slice(0, CHOOSER_LIMIT)) {
        const label = element("label", "labtrack-rt-option");
        const box = element("input");
        box.type = "checkbox";
        box.checked = isChosen.has(key);
        box.addEventListener("change", () => {
          const now = model.get("columns");
          setColumns(box.checked ? [...now, key] : now.filter((c) => c !== key));
        });
        label.append(box, element("span", undefined, splitColumn(key).key));
        label.title = key;
        group.appendChild(label);
      }
      if (keys.length > CHOOSER_LIMIT) {
        group.appendChild(element("div", "labtrack-rt-note",
          `… ${keys.length - CHOOSER_LIMIT} more: type to find them`));
      }
      chooserList.appendChild(group);
    }
    if (!chooserList.children.length) {
      chooserList.appendChild(element("div", "labtrack-rt-note", "No column matches."));
    }
    chooserList.scrollTop = scroll;
    if (focused && !chooser.contains(document.activeElement)) {
      chooserSearch.focus({ preventScroll: true }); // Escape still closes, typing still finds
    }
  }

  chooseButton.addEventListener("click", () => {
    chooser.hidden = !chooser.hidden;
    chooseButton.classList.toggle("labtrack-rt-pressed", !chooser.hidden);
    renderChooser();
    if (!chooser.hidden) {
      chooserSearch.focus();
    }
  });
  chooserSearch.addEventListener("input", () => renderChooser());
  chooser.addEventListener("keydown", (event) => {
    event.stopPropagation();
    if (event.key === "Escape") {
      chooser.hidden = true;
      chooseButton.classList.remove("labtrack-rt-pressed");
    }
  });
  const closeChooser = (event: MouseEvent) => {
    const target = event.target as Node;
    if (!chooser.hidden && !chooser.contains(target) && !chooseButton.contains(target)) {
      chooser.hidden = true;
      chooseButton.classList.remove("labtrack-rt-pressed");
    }
  };
  document.addEventListener("mousedown", closeChooser);

  // -- refresh -------------------------------------------------------------------------------
  // anywidget's command call, or the same message by hand where the host does not offer it.
  const pending = new Map<string, (response: unknown) => void>();
  const onCustom = (message: { kind?: string; id?: string; response?: unknown }) => {
    if (message?.kind === "anywidget-command-response" && pending.has(message.id ?? "")) {
      pending.get(message.id!)!(message.response);
      pending.delete(message.id!);
    }
  };
  model.on("msg:custom", onCustom);
  let calls = 0;
  function invoke(name: string, msg: unknown): Promise<unknown> {
    if (experimental?.invoke) {
      return experimental.invoke(name, msg).then(([response]) => response);
    }
    const id = `labtrack-rt-${Date.now()}-${calls++}`;
    return new Promise((resolve, reject) => {
      pending.set(id, resolve);
      model.send({ id, kind: "anywidget-command", name, msg });
      setTimeout(() => {
        if (pending.delete(id)) {
          reject(new Error("the kernel did not answer"));
        }
      }, 120_000);
    });
  }

  refreshButton.addEventListener("click", async () => {
    refreshButton.disabled = true;
    try {
      await invoke("_refresh", {});
    } catch (reason) {
      error.textContent = `Refresh failed: ${reason}`;
      error.hidden = false;
    } finally {
      refreshButton.disabled = false;
    }
  });

  // -- model → view --------------------------------------------------------------------------
  function renderSummary(): void {
    const total = rows.length;
    count.textContent = `${total.toLocaleString()} run${total === 1 ? "" : "s"}`;
    const chosen = selection.selected.length;
    const hidden = selection.selected.filter((id) => !idSet.has(id)).length;
    selectionText.textContent = `${chosen.toLocaleString()} selected` +
      (hidden ? ` (${hidden.toLocaleString()} not in this view)` : "");
    selectionInfo.hidden = chosen === 0;
    loading.hidden = !model.get("loading");
    root.classList.toggle("labtrack-rt-busy", model.get("loading"));
    truncated.hidden = !model.get("truncated");
    truncated.textContent = `only the first ${model.get("max_runs").toLocaleString()} ` +
      "matching runs are shown: narrow the filter or raise max_runs";
    const message = model.get("error");
    error.textContent = message;
    error.hidden = !message;
    const names = model.get("experiment_names");
    experiments.textContent = model.get("experiment_ids")
      .map((id) => names[id] ?? id).join(", ");
    empty.hidden = total > 0;
    empty.textContent = model.get("filter_string") ? "No run matches the filter."
      : "No runs in this experiment yet.";
  }

  function syncData(): void {
    rows = model.get("rows");
    ids = rows.map((row) => row[RUN_ID] as string);
    idSet = new Set(ids);
    if (cursor >= rows.length) {
      cursor = rows.length - 1;
    }
    const key = JSON.stringify([model.get("row_columns"), model.get("experiment_names")]);
    if (key !== columnsKey) {
      columnsKey = key;
      columns = buildColumns();
      dropRows();
      applyWidths();
    }
    renderHead();
    sizeViewport();
    paint(true);
    renderSummary();
    renderChooser();
  }

  // Rows and their columns arrive in one message as several change events: redraw once.
  let dataFrame = 0;
  const onData = () => {
    if (!dataFrame) {
      dataFrame = requestAnimationFrame(() => {
        dataFrame = 0;
        syncData();
      });
    }
  };
  const onSelection = () => syncSelection();
  // A new sort or filter starts at the top of its rows (a refresh stays where it was).
  const onSort = () => {
    viewport.scrollTop = 0;
    renderHead();
  };
  const onStatus = () => {
    renderSummary();
    renderFilterState();
  };
  const onFilter = () => {
    viewport.scrollTop = 0;
    if (document.activeElement !== filter) {
      filter.value = model.get("filter_string");
    }
    renderFilterState();
  };
  const onColumns = () => renderChooser();

  filter.value = model.get("filter_string");
  selection = { selected: model.get("selected_run_ids"), anchor: null };
  selected = new Set(selection.selected);
  syncData();
  renderFilterState();

  const ticker = setInterval(() => {
    // Durations of running runs in view keep counting.
    for (const index of shown.keys()) {
      if (rows[index]?.[STATUS] === "RUNNING") {
        paint(true);
        return;
      }
    }
  }, 1000);

  const events: [string, () => void][] = [
    ["change:rows", onData],
    ["change:row_columns", onData],
    ["change:experiment_names", onData],
    ["change:selected_run_ids", onSelection],
    ["change:sort_keys", onSort],
    ["change:error", onStatus],
    ["change:loading", onStatus],
    ["change:truncated", onStatus],
    ["change:filter_string", onFilter],
    ["change:available_columns", onColumns],
    ["change:columns", onColumns],
  ];
  for (const [name, callback] of events) {
    model.on(name, callback);
  }
  return () => {
    clearInterval(ticker);
    resizeObserver.disconnect();
    cancelAnimationFrame(paintFrame);
    cancelAnimationFrame(dataFrame);
    document.removeEventListener("mousedown", closeChooser);
    model.off("msg:custom", onCustom);
    for (const [name, callback] of events) {
      model.off(name, callback);
    }
  };
}

export default { render };

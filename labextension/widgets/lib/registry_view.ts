// What the registry widgets share: stage pills, tables, the action runner (one anywidget
// command, "_invoke"), the notice line, the open-requests table with its buttons, and the
// history timeline.
import type { AnyModel, Experimental } from "@anywidget/types";
import { element, formatTime } from "./format";

export const STAGES = ["None", "Staging", "Production", "Archived"];

export interface IRequest {
  id: string;
  model_name: string;
  version: string;
  from_stage: string;
  to_stage: string;
  user_id: string;
  creation_timestamp: number;
  comment: string;
  available_actions: string[];
}

export interface IActivity {
  id: string;
  version: string;
  activity_type: string;
  label: string;
  user_id: string;
  creation_timestamp: number;
  from_stage: string;
  to_stage: string;
  comment: string;
  system_comment: string;
}

export interface INoticeModel {
  message: string;
  error: string;
  error_code: string;
}

interface IActionResponse {
  ok: boolean;
  message: string;
  error: string;
  error_code: string;
}

const APPROVE = "APPROVE_TRANSITION_REQUEST";
const REJECT = "REJECT_TRANSITION_REQUEST";
const CANCEL = "CANCEL_TRANSITION_REQUEST";

/** ``draw`` once after the current burst of trait changes, however many there were. */
export function scheduler(draw: () => void): () => void {
  let pending = false;
  return () => {
    if (!pending) {
      pending = true;
      queueMicrotask(() => {
        pending = false;
        draw();
      });
    }
  };
}

export function stagePill(stage: string, text?: string): HTMLElement {
  const pill = element("span", "labtrack-stage", text ?? stage);
  pill.dataset.stage = stage || "None";
  return pill;
}

/** "Version 3" in the colour of its stage, or nothing when there is no version. */
export function versionPill(version: string, stage: string): Node {
  return version ? stagePill(stage, `Version ${version}`) : document.createTextNode("");
}

export function button(label: string, onClick: () => void, kind = ""): HTMLButtonElement {
  const node = element("button", `labtrack-button ${kind}`.trim(), label);
  node.type = "button";
  node.addEventListener("click", (event) => {
    event.stopPropagation();
    onClick();
  });
  return node;
}

export function cell(content: Node | string, className?: string): HTMLTableCellElement {
  const td = element("td", className);
  if (typeof content === "string") {
    td.textContent = content;
  } else {
    td.appendChild(content);
  }
  return td;
}

/** A table with a header row; rows go into the returned body. */
export function table(className: string, columns: string[]): [HTMLTableElement, HTMLElement] {
  const node = element("table", `labtrack-registry-table ${className}`);
  const head = element("thead");
  const row = element("tr");
  for (const column of columns) {
    row.appendChild(element("th", undefined, column));
  }
  head.appendChild(row);
  const body = element("tbody");
  node.append(head, body);
  return [node, body];
}

export function emptyRow(columns: number, text: string): HTMLTableRowElement {
  const row = element("tr", "labtrack-empty");
  const td = cell(text);
  td.colSpan = columns;
  row.appendChild(td);
  return row;
}

/** The error (with its code) or the last action's outcome, or "Working…". */
export class Notice {
  readonly element = element("div", "labtrack-notice");
  private local = "";
  private busy = false;

  constructor(private model: AnyModel<INoticeModel>) {
    this.render();
  }

  /** An error the kernel could not report (it did not answer the command). */
  setLocalError(text: string): void {
    this.local = text;
    this.render();
  }

  setBusy(busy: boolean): void {
    this.busy = busy;
    this.render();
  }

  render(): void {
    this.element.replaceChildren();
    const error = this.local || this.model.get("error");
    if (error) {
      const box = element("div", "labtrack-error");
      const code = this.local ? "" : this.model.get("error_code");
      if (code) {
        box.appendChild(element("span", "labtrack-error-code", code.replace(/_/g, " ")));
      }
      box.appendChild(document.createTextNode(error));
      this.element.appendChild(box);
    } else if (this.busy) {
      this.element.appendChild(element("div", "labtrack-message", "Working…"));
    } else if (this.model.get("message")) {
      this.element.appendChild(element("div", "labtrack-message", this.model.get("message")));
    }
  }

  clearLocal(): void {
    this.local = "";
    this.render();
  }
}

/** Sends actions to the kernel, one at a time; the widget's traits carry the new state. */
export class Actions {
  private running = false;

  constructor(
    private root: HTMLElement,
    private experimental: Experimental,
    private notice: Notice
  ) {}

  async run(action: string, args: Record<string, unknown> = {}): Promise<boolean> {
    if (this.running) {
      return false;
    }
    this.running = true;
    this.root.dataset.busy = "true";
    this.notice.clearLocal();
    this.notice.setBusy(true);
    try {
      const [response] = await this.experimental.invoke<IActionResponse>("_invoke", {
        action,
        args,
      });
      return response.ok;
    } catch (error) {
      this.notice.setLocalError(`The kernel did not answer (${String(error)}).`);
      return false;
    } finally {
      this.running = false;
      delete this.root.dataset.busy;
      this.notice.setBusy(false);
    }
  }
}

interface IDraft {
  comment: string;
  archive: boolean;
}

/** Open requests with, per row, a comment box, the archive option and the buttons the user
 * may press (from the request's available_actions). Drafts survive redraws. */
export class RequestsView {
  readonly element = element("div", "labtrack-requests");
  private drafts = new Map<string, IDraft>();

  constructor(private actions: Actions, public showModel: boolean) {}

  render(requests: IRequest[], emptyText: string): void {
    const columns = [
      ...(this.showModel ? ["Model"] : []),
      "Version",
      "Transition",
      "Requested by",
      "Requested at",
      "Comment",
      "Decision",
    ];
    const [node, body] = table("labtrack-requests-table", columns);
    if (!requests.length) {
      body.appendChild(emptyRow(columns.length, emptyText));
    }
    const seen = new Set<string>();
    for (const request of requests) {
      seen.add(request.id);
      body.appendChild(this.row(request));
    }
    for (const id of this.drafts.keys()) {
      if (!seen.has(id)) {
        this.drafts.delete(id);
      }
    }
    this.element.replaceChildren(node);
  }

  private row(request: IRequest): HTMLTableRowElement {
    const tr = element("tr");
    tr.dataset.requestId = request.id;
    if (this.showModel) {
      tr.appendChild(cell(request.model_name));
    }
    tr.appendChild(cell(request.version));
    tr.appendChild(cell(transition(request.from_stage, request.to_stage)));
    tr.appendChild(cell(request.user_id));
    tr.appendChild(cell(formatTime(request.creation_timestamp)));
    tr.appendChild(cell(request.comment, "labtrack-comment"));
    tr.appendChild(cell(this.decision(request), "labtrack-decision"));
    return tr;
  }

  private decision(request: IRequest): Node {
    const may = new Set(request.available_actions);
    const box = element("div", "labtrack-decision-box");
    if (!may.size) {
      box.appendChild(element("span", "labtrack-meta", "Waiting for an approver"));
      return box;
    }
    const draft = this.drafts.get(request.id) ?? { comment: "", archive: false };
    this.drafts.set(request.id, draft);
    const comment = element("input", "labtrack-input");
    comment.type = "text";
    comment.placeholder = "Comment (optional)";
    comment.value = draft.comment;
    comment.setAttribute("aria-label", `Comment on request ${request.id}`);
    comment.addEventListener("input", () => (draft.comment = comment.value));
    box.appendChild(comment);
    const archivable = request.to_stage === "Staging" || request.to_stage === "Production";
    if (may.has(APPROVE) && archivable) {
      const label = element("label", "labtrack-check");
      const check = element("input");
      check.type = "checkbox";
      check.checked = draft.archive;
      check.addEventListener("change", () => (draft.archive = check.checked));
      label.append(check, document.createTextNode(` Archive current ${request.to_stage} versions`));
      box.appendChild(label);
    }
    const buttons = element("div", "labtrack-buttons");
    const done = (ok: boolean) => {
      if (ok) {
        this.drafts.delete(request.id);
      }
    };
    if (may.has(APPROVE)) {
      buttons.appendChild(
        button("Approve", () => {
          this.actions
            .run("approve", {
              request_id: request.id,
              comment: draft.comment,
              archive_existing: draft.archive,
            })
            .then(done);
        }, "labtrack-primary")
      );
    }
    if (may.has(REJECT)) {
      buttons.appendChild(
        button("Reject", () => {
          this.actions.run("reject", { request_id: request.id, comment: draft.comment }).then(done);
        }, "labtrack-danger")
      );
    }
    if (may.has(CANCEL)) {
      buttons.appendChild(
        button("Cancel request", () => {
          this.actions.run("cancel", { request_id: request.id, comment: draft.comment }).then(done);
        })
      );
    }
    box.appendChild(buttons);
    return box;
  }
}

/** "Staging → Production" as two pills. */
export function transition(from: string, to: string): Node {
  const span = element("span", "labtrack-transition");
  if (from) {
    span.append(stagePill(from), document.createTextNode(" → "));
  }
  if (to) {
    span.appendChild(stagePill(to));
  }
  return span;
}

/** The history, newest first: who did what, when, between which stages, and why. */
export function renderTimeline(activities: IActivity[], version: string): HTMLElement {
  const list = element("ol", "labtrack-timeline");
  const shown = version ? activities.filter((a) => a.version === version) : activities;
  if (!shown.length) {
    list.appendChild(element("li", "labtrack-empty", "No events."));
  }
  for (const activity of shown) {
    const item = element("li", "labtrack-event");
    item.dataset.type = activity.activity_type;
    const line = element("div", "labtrack-event-line");
    line.append(
      element("span", "labtrack-event-time", formatTime(activity.creation_timestamp)),
      element("span", "labtrack-event-user", activity.user_id),
      element("span", "labtrack-event-action", activity.label)
    );
    if (activity.version) {
      line.appendChild(element("span", "labtrack-event-version", `version ${activity.version}`));
    }
    // A new version "enters" None: only real moves get pills.
    if (activity.from_stage || (activity.to_stage && activity.to_stage !== "None")) {
      line.appendChild(transition(activity.from_stage, activity.to_stage));
    }
    item.appendChild(line);
    if (activity.comment) {
      item.appendChild(element("blockquote", "labtrack-event-comment", activity.comment));
    }
    if (activity.system_comment) {
      item.appendChild(element("div", "labtrack-event-system", activity.system_comment));
    }
    list.appendChild(item);
  }
  return list;
}

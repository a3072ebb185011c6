// RegistryBrowser: registered models (Name, Latest Version, Staging, Production, open
// requests); click one for its versions, open requests and history, with inline forms to
// request a transition or comment. Every action goes to the kernel as a command; the tables
// come back through the widget's traits.
import type { AnyModel, RenderProps } from "@anywidget/types";
import { element, formatTime, shortRunId } from "./lib/format";
import {
  Actions,
  button,
  cell,
  emptyRow,
  IActivity,
  INoticeModel,
  IRequest,
  Notice,
  renderTimeline,
  RequestsView,
  scheduler,
  STAGES,
  stagePill,
  table,
  versionPill,
} from "./lib/registry_view";

interface IModelRow {
  name: string;
  latest_version: string;
  staging: string;
  production: string;
  description: string;
  user_id: string;
  last_updated_timestamp: number;
  pending: number;
}

interface IVersion {
  version: string;
  creation_timestamp: number;
  user_id: string;
  current_stage: string;
  run_id: string;
  run_name: string;
  source: string;
  status: string;
  description: string;
  aliases: string[];
  pending: { id: string; to_stage: string; user_id: string }[];
}

interface IModelDetail {
  name: string;
  description: string;
  user_id: string;
  creation_timestamp: number;
  last_updated_timestamp: number;
  aliases: Record<string, string>;
  tags: Record<string, string>;
}

interface IModel extends INoticeModel {
  filter_string: string;
  models: IModelRow[];
  models_more: boolean;
  selected: string;
  model: IModelDetail | Record<string, never>;
  versions: IVersion[];
  requests: IRequest[];
  activities: IActivity[];
  activities_more: boolean;
}

interface IForm {
  version: string;
  kind: "request" | "comment";
  stage: string;
  text: string;
  focused: boolean; // focus the text box once, when the form opens
}

function render({ model, el, experimental }: RenderProps<IModel>): () => void {
  const root = element("div", "labtrack-widget labtrack-registry labtrack-registry-browser");
  const header = element("div", "labtrack-header");
  const title = element("span", "labtrack-title", "Model registry");
  const search = element("form", "labtrack-search");
  const filter = element("input", "labtrack-input");
  filter.type = "search";
  filter.placeholder = "Filter, e.g. name LIKE '%forecast%'";
  filter.setAttribute("aria-label", "Registered model filter");
  filter.value = model.get("filter_string");
  const searchButton = element("button", "labtrack-button", "Search");
  searchButton.type = "submit";
  search.append(filter, searchButton);
  const notice = new Notice(model as unknown as AnyModel<INoticeModel>);
  const actions = new Actions(root, experimental, notice);
  header.append(title, search, button("Refresh", () => actions.run("refresh")));
  const list = element("div", "labtrack-registry-models");
  const detail = element("div", "labtrack-registry-detail");
  root.append(header, notice.element, list, detail);
  el.appendChild(root);

  search.addEventListener("submit", (event) => {
    event.preventDefault();
    actions.run("search", { filter_string: filter.value });
  });

  const requestsView = new RequestsView(actions, false);
  let form: IForm | null = null;
  let historyVersion = "";

  function renderModels(): void {
    const columns = ["Name", "Latest Version", "Staging", "Production", "Open requests",
      "Last modified"];
    const [node, body] = table("labtrack-models-table", columns);
    const models = model.get("models");
    const selected = model.get("selected");
    if (!models.length) {
      body.appendChild(emptyRow(columns.length, model.get("filter_string")
        ? "No registered model matches the filter." : "No registered models yet."));
    }
    for (const row of models) {
      const tr = element("tr", "labtrack-clickable");
      tr.tabIndex = 0;
      tr.dataset.name = row.name;
      if (row.name === selected) {
        tr.classList.add("labtrack-selected");
        tr.setAttribute("aria-selected", "true");
      }
      const name = cell(row.name, "labtrack-name");
      name.title = row.description || row.name;
      tr.append(
        name,
        cell(row.latest_version ? `Version ${row.latest_version}` : ""),
        cell(versionPill(row.staging, "Staging")),
        cell(versionPill(row.production, "Production")),
        cell(row.pending ? String(row.pending) : ""),
        cell(formatTime(row.last_updated_timestamp))
      );
      const open = () => {
        form = null;
        historyVersion = "";
        actions.run("select_model", { name: row.name === selected ? null : row.name });
      };
      tr.addEventListener("click", open);
      tr.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          open();
        }
      });
      body.appendChild(tr);
    }
    list.replaceChildren(node);
    if (model.get("models_more")) {
      list.appendChild(element("div", "labtrack-meta",
        `Showing the first ${models.length} models: narrow the filter to see others.`));
    }
  }

  function versionForm(version: IVersion, columns: number): HTMLTableRowElement {
    const current = form!;
    const tr = element("tr", "labtrack-form-row");
    const td = element("td");
    td.colSpan = columns;
    const box = element("form", "labtrack-inline-form");
    if (current.kind === "request") {
      const stage = element("select", "labtrack-input");
      stage.setAttribute("aria-label", "Target stage");
      for (const option of STAGES.filter((s) => s !== version.current_stage)) {
        const node = element("option", undefined, option);
        node.value = option;
        stage.appendChild(node);
      }
      if (!current.stage || current.stage === version.current_stage) {
        current.stage = stage.options[0].value;
      }
      stage.value = current.stage;
      stage.addEventListener("change", () => (current.stage = stage.value));
      box.append(element("span", undefined, `Move version ${version.version} to`), stage);
    }
    const text = element("textarea", "labtrack-input labtrack-textarea");
    text.rows = 2;
    text.placeholder = current.kind === "request" ? "Why (optional)" : "Comment";
    text.setAttribute("aria-label", text.placeholder);
    text.value = current.text;
    text.addEventListener("input", () => (current.text = text.value));
    const submit = element("button", "labtrack-button labtrack-primary",
      current.kind === "request" ? "Request transition" : "Add comment");
    submit.type = "submit";
    box.append(text, submit, button("Cancel", () => {
      form = null;
      renderDetail();
    }));
    box.addEventListener("submit", (event) => {
      event.preventDefault();
      const sent = current.kind === "request"
        ? actions.run("request_transition", {
          version: version.version, stage: current.stage, comment: current.text,
        })
        : actions.run("comment", { version: version.version, text: current.text });
      sent.then((ok) => {
        if (ok && form === current) {
          form = null;
          renderDetail();
        }
      });
    });
    td.appendChild(box);
    tr.appendChild(td);
    if (!current.focused) {
      current.focused = true;
      setTimeout(() => text.focus(), 0);
    }
    return tr;
  }

  function renderVersions(): HTMLElement {
    const columns = ["Version", "Registered at", "Created by", "Stage", "Source run",
      "Open requests", ""];
    const [node, body] = table("labtrack-versions-table", columns);
    const versions = model.get("versions");
    if (!versions.length) {
      body.appendChild(emptyRow(columns.length, "No versions yet."));
    }
    for (const version of versions) {
      const tr = element("tr");
      tr.dataset.version = version.version;
      const stage = element("span");
      stage.appendChild(stagePill(version.current_stage));
      for (const alias of version.aliases) {
        stage.appendChild(element("span", "labtrack-alias", `@${alias}`));
      }
      const run = cell(version.run_name || (version.run_id ? shortRunId(version.run_id) : ""));
      run.title = version.run_id ? `run ${version.run_id}\n${version.source}` : version.source;
      const pending = element("span");
      for (const request of version.pending) {
        const item = element("span", "labtrack-pending");
        item.append(document.createTextNode("→ "), stagePill(request.to_stage),
          document.createTextNode(` by ${request.user_id}`));
        pending.appendChild(item);
      }
      const buttons = element("span", "labtrack-buttons");
      buttons.append(
        button("Request transition…", () => {
          form = { version: version.version, kind: "request", stage: "", text: "",
            focused: false };
          renderDetail();
        }),
        button("Comment…", () => {
          form = { version: version.version, kind: "comment", stage: "", text: "",
            focused: false };
          renderDetail();
        })
      );
      tr.append(
        cell(version.version, "labtrack-name"),
        cell(formatTime(version.creation_timestamp)),
        cell(version.user_id),
        cell(stage),
        run,
        cell(pending),
        cell(buttons, "labtrack-row-actions")
      );
      body.appendChild(tr);
      if (form && form.version === version.version) {
        body.appendChild(versionForm(version, columns.length));
      }
    }
    return node;
  }

  function renderHistory(): HTMLElement {
    const section = element("div", "labtrack-history");
    const head = element("div", "labtrack-section-head");
    head.appendChild(element("span", "labtrack-section-title", "History"));
    const chooser = element("select", "labtrack-input");
    chooser.setAttribute("aria-label", "Show the history of");
    const all = element("option", undefined, "All versions");
    all.value = "";
    chooser.appendChild(all);
    for (const version of model.get("versions")) {
      const option = element("option", undefined, `Version ${version.version}`);
      option.value = version.version;
      chooser.appendChild(option);
    }
    chooser.value = historyVersion;
    chooser.addEventListener("change", () => {
      historyVersion = chooser.value;
      renderDetail();
    });
    head.appendChild(chooser);
    section.append(head, renderTimeline(model.get("activities"), historyVersion));
    if (model.get("activities_more")) {
      section.appendChild(button("Show older events", () => actions.run("more_activities")));
    }
    return section;
  }

  function renderDetail(): void {
    const current = model.get("model") as IModelDetail;
    if (!current || !current.name) {
      detail.replaceChildren();
      detail.hidden = true;
      return;
    }
    detail.hidden = false;
    if (form && !model.get("versions").some((v) => v.version === form!.version)) {
      form = null;
    }
    const head = element("div", "labtrack-header");
    head.append(
      element("span", "labtrack-title", current.name),
      element("span", "labtrack-meta",
        `created by ${current.user_id} · ${formatTime(current.creation_timestamp)}`)
    );
    const parts: Node[] = [head];
    if (current.description) {
      parts.push(element("p", "labtrack-description", current.description));
    }
    const aliases = Object.entries(current.aliases);
    if (aliases.length) {
      const line = element("div", "labtrack-meta");
      line.textContent = "Aliases: " + aliases.map(([a, v]) => `@${a} → ${v}`).join(", ");
      parts.push(line);
    }
    parts.push(element("div", "labtrack-section-title", "Versions"), renderVersions());
    const requests = model.get("requests");
    if (requests.length) {
      requestsView.render(requests, "No open requests.");
      parts.push(element("div", "labtrack-section-title", "Open requests"),
        requestsView.element);
    }
    parts.push(renderHistory());
    detail.replaceChildren(...parts);
  }

  renderModels();
  renderDetail();
  // One message from the kernel changes several traits: draw once for all of them.
  const onModels = scheduler(renderModels);
  const onDetail = scheduler(renderDetail);
  const onNotice = () => notice.render();
  const onFilter = () => {
    if (document.activeElement !== filter) {
      filter.value = model.get("filter_string");
    }
  };
  const events: [string, () => void][] = [
    ["change:models", onModels],
    ["change:models_more", onModels],
    ["change:selected", onModels],
    ["change:model", onDetail],
    ["change:versions", onDetail],
    ["change:requests", onDetail],
    ["change:activities", onDetail],
    ["change:activities_more", onDetail],
    ["change:message", onNotice],
    ["change:error", onNotice],
    ["change:error_code", onNotice],
    ["change:filter_string", onFilter],
  ];
  for (const [name, handler] of events) {
    model.on(name, handler);
  }
  return () => {
    for (const [name, handler] of events) {
      model.off(name, handler);
    }
  };
}

export default { render };

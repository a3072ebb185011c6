// TransitionRequests: the open stage-transition requests, oldest first, each with a comment
// box, the "archive current versions" option and only the buttons this user may press
// (Approve / Reject / Cancel request, from each request's available_actions). After an
// action the kernel sends the table again.
import type { AnyModel, RenderProps } from "@anywidget/types";
import { element } from "./lib/format";
import { Actions, button, INoticeModel, IRequest, Notice, RequestsView, scheduler }
  from "./lib/registry_view";

interface IModel extends INoticeModel {
  name: string;
  requests: IRequest[];
}

function render({ model, el, experimental }: RenderProps<IModel>): () => void {
  const root = element("div", "labtrack-widget labtrack-registry labtrack-transition-requests");
  const header = element("div", "labtrack-header");
  const title = element("span", "labtrack-title");
  const count = element("span", "labtrack-meta");
  const notice = new Notice(model as unknown as AnyModel<INoticeModel>);
  const actions = new Actions(root, experimental, notice);
  header.append(title, count, button("Refresh", () => actions.run("refresh")));
  const view = new RequestsView(actions, !model.get("name"));
  root.append(header, notice.element, view.element);
  el.appendChild(root);

  function draw(): void {
    const name = model.get("name");
    const requests = model.get("requests");
    title.textContent = name ? `Transition requests for ${name}` : "Transition requests";
    count.textContent = requests.length === 1 ? "1 open" : `${requests.length} open`;
    view.showModel = !name;
    view.render(requests, "No open requests.");
  }

  draw();
  const onRequests = scheduler(draw);
  const onNotice = () => notice.render();
  const events: [string, () => void][] = [
    ["change:requests", onRequests],
    ["change:name", onRequests],
    ["change:message", onNotice],
    ["change:error", onNotice],
    ["change:error_code", onNotice],
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

// The left side panel: a header with the server's state (the handshake's message when the
// server side is missing, mismatched or down), tabs for Runs, Models and Requests (with the
// pending count), and the tab's view. Showing or hiding the panel starts or pauses the poll.
import { Message } from '@lumino/messaging';
import { Signal } from '@lumino/signaling';
import { Panel, Widget } from '@lumino/widgets';
import { PanelModel, Tab } from '../model';
import { IPanelActions } from './actions';
import { button, h, message } from './dom';
import { ModelsView } from './ModelsView';
import { RequestsView } from './RequestsView';
import { RunsView } from './RunsView';

const TABS: [Tab, string][] = [
  ['runs', 'Runs'],
  ['models', 'Models'],
  ['requests', 'Requests']
];

export class LabtrackPanel extends Panel {
  constructor(
    readonly model: PanelModel,
    actions: IPanelActions
  ) {
    super();
    this.addClass('jp-Labtrack-panel');
    this.header = new Widget({ node: h('div', { className: 'jp-Labtrack-header' }) });
    this.views = {
      runs: new RunsView(model, actions),
      models: new ModelsView(model, actions),
      requests: new RequestsView(model, actions)
    };
    this.addWidget(this.header);
    for (const [tab] of TABS) {
      this.views[tab].addClass('jp-Labtrack-view');
      this.addWidget(this.views[tab]);
    }
    model.changed.connect((_, change) => {
      if (change === 'handshake' || change === 'tab' || change === 'requests') {
        this.renderHeader();
      }
    }, this);
    this.renderHeader();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.model.setVisible(true);
    // The side bar learns the panel's minimum width (its CSS may have loaded after the
    // panel was added), so the tables are not squeezed.
    this.parent?.fit();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.model.setVisible(false);
  }

  private renderHeader(): void {
    const model = this.model;
    const handshake = model.handshake;
    const info = handshake.info;
    const tabs = TABS.map(([tab, label]) => {
      const node = button(label, () => model.setTab(tab), {
        className: `jp-Labtrack-tab${tab === model.tab ? ' jp-mod-current' : ''}`
      });
      node.dataset.tab = tab;
      node.setAttribute('role', 'tab');
      node.setAttribute('aria-selected', String(tab === model.tab));
      if (tab === 'requests' && model.pendingCount) {
        node.append(h('span', { className: 'jp-Labtrack-badge', textContent: String(model.pendingCount) }));
      }
      return node;
    });
    this.header.node.replaceChildren(
      h(
        'div',
        { className: 'jp-Labtrack-title' },
        h('span', { className: 'jp-Labtrack-brand', textContent: 'labtrack' }),
        h('span', {
          className: 'jp-Labtrack-server',
          textContent: info ? `${info.user} · v${info.version}` : '',
          title: info ? `labtrack ${info.version}, API ${info.api_version}` : ''
        }),
        button('↻', () => void model.refresh().catch(() => undefined), {
          title: 'Check the server and reload',
          className: 'jp-Labtrack-refresh'
        })
      ),
      handshake.state === 'ok' || handshake.state === 'pending'
        ? ''
        : h('div', { className: 'jp-Labtrack-banner', dataset: { state: handshake.state } }, message(handshake.message, 'error')),
      h('div', { className: 'jp-Labtrack-tabs', role: 'tablist' }, ...tabs)
    );
    for (const [tab] of TABS) {
      this.views[tab].setHidden(tab !== model.tab);
    }
  }

  dispose(): void {
    Signal.disconnectReceiver(this);
    super.dispose();
  }

  private header: Widget;
  private views: Record<Tab, Widget>;
}

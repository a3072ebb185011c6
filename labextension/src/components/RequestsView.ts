// The Requests tab: every open transition request the user can see, across models, with
// the actions the user may take on each.
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';
import { PanelModel } from '../model';
import { IPanelActions } from './actions';
import { button, h, message } from './dom';
import { requestCard } from './RequestCard';

export class RequestsView extends Widget {
  constructor(
    private model: PanelModel,
    private actions: IPanelActions
  ) {
    super();
    this.addClass('jp-Labtrack-requests');
    this.noticeBox = h('div', { className: 'jp-Labtrack-notice-slot' });
    this.list = h('div', { className: 'jp-Labtrack-request-list' });
    this.node.append(
      h(
        'div',
        { className: 'jp-Labtrack-toolbar' },
        h('span', { className: 'jp-Labtrack-meta', textContent: 'Pending transition requests' }),
        h('span', { className: 'jp-Labtrack-spacer' }),
        button('↻', () => void this.model.loadRequests(), { title: 'Reload the requests' })
      ),
      this.noticeBox,
      h('div', { className: 'jp-Labtrack-scroll' }, this.list)
    );
    model.changed.connect((_, change) => {
      if (change === 'requests' || change === 'registry') {
        this.render();
      }
    }, this);
    this.render();
  }

  private render(): void {
    const model = this.model;
    this.noticeBox.replaceChildren(
      model.requestsError ? message(model.requestsError.readable, 'error') : '',
      model.notice ? message(model.notice, 'ok') : ''
    );
    const cards = model.requests.map(request =>
      requestCard(request, {
        resolve: (r, action, comment, archive) => model.resolveRequest(r, action, comment, archive),
        openModel: name => this.actions.openModel(name),
        error: model.requestErrors.get(request.id),
        draft: this.drafts.get(request.id),
        onDraft: text => this.drafts.set(request.id, text)
      })
    );
    this.list.replaceChildren(
      ...(cards.length
        ? cards
        : [message(model.connected ? 'No pending requests.' : 'Waiting for the server…')])
    );
  }

  dispose(): void {
    Signal.disconnectReceiver(this);
    super.dispose();
  }

  private noticeBox: HTMLElement;
  private list: HTMLElement;
  private drafts = new Map<string, string>();
}

// The Models tab: registered models with their newest version, newest Staging and
// Production versions and aliases; a click opens the model's page.
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';
import { PanelModel, modelSummary } from '../model';
import { IRegisteredModel } from '../tokens';
import { IPanelActions } from './actions';
import { button, h, message, stagePill } from './dom';

export const MODEL_COLUMNS = ['Name', 'Latest Version', 'Staging', 'Production'];

export class ModelsView extends Widget {
  constructor(
    private model: PanelModel,
    private actions: IPanelActions
  ) {
    super();
    this.addClass('jp-Labtrack-models');
    this.filterInput = h('input', {
      type: 'search',
      className: 'jp-Labtrack-filter',
      placeholder: 'Filter models by name',
      spellcheck: false
    });
    this.filterInput.addEventListener('input', () => {
      window.clearTimeout(this.typing);
      this.typing = window.setTimeout(
        () => void this.model.setModelsFilter(this.filterInput.value),
        250
      );
    });
    this.errorBox = h('div', { className: 'jp-Labtrack-error-slot' });
    this.table = h('table', { className: 'jp-Labtrack-table jp-Labtrack-models-table' });
    this.more = h('div', { className: 'jp-Labtrack-more' });
    this.node.append(
      h(
        'div',
        { className: 'jp-Labtrack-toolbar' },
        this.filterInput,
        button('↻', () => void this.model.loadModels(), { title: 'Reload the models' })
      ),
      this.errorBox,
      h('div', { className: 'jp-Labtrack-scroll' }, this.table, this.more)
    );
    model.changed.connect((_, change) => {
      if (change === 'models') {
        this.render();
      }
    }, this);
    this.render();
  }

  private render(): void {
    const model = this.model;
    this.errorBox.replaceChildren(model.modelsError ? message(model.modelsError.readable, 'error') : '');
    const body = h('tbody');
    for (const registered of model.models) {
      body.append(this.row(registered));
    }
    if (!model.models.length && !model.modelsError) {
      const text = !model.connected
        ? 'Waiting for the server…'
        : model.modelsFilter
          ? 'No model name matches.'
          : 'No registered models yet: labtrack.register_model("runs:/<run id>/model", "name").';
      body.append(
        h('tr', { className: 'jp-Labtrack-empty' }, h('td', { colSpan: MODEL_COLUMNS.length, textContent: text }))
      );
    }
    this.table.replaceChildren(
      h('thead', {}, h('tr', {}, ...MODEL_COLUMNS.map(c => h('th', { textContent: c })))),
      body
    );
    this.more.replaceChildren(
      model.modelsToken
        ? button('Load more models', () => void model.loadMoreModels(), { className: 'jp-Labtrack-load-more' })
        : ''
    );
  }

  private row(registered: IRegisteredModel): HTMLElement {
    const summary = modelSummary(registered);
    const name = h('a', {
      className: 'jp-Labtrack-link',
      href: '#',
      textContent: registered.name,
      title: registered.description || `Open ${registered.name}`
    });
    const open = (event: Event) => {
      event.preventDefault();
      this.actions.openModel(registered.name);
    };
    name.addEventListener('click', open);
    const version = (number: string, stage: string) =>
      number ? stagePill(stage, `v${number}`) : h('span', { className: 'jp-Labtrack-none', textContent: '—' });
    const tr = h(
      'tr',
      { className: 'jp-Labtrack-model', dataset: { model: registered.name } },
      h(
        'td',
        { className: 'jp-Labtrack-name' },
        name,
        summary.aliases.length
          ? h('div', { className: 'jp-Labtrack-aliases', textContent: summary.aliases.map(a => `@${a}`).join(' '), title: 'Aliases' })
          : ''
      ),
      h('td', { className: 'jp-Labtrack-latest' }, summary.latest ? `v${summary.latest}` : '—'),
      h('td', {}, version(summary.staging, 'Staging')),
      h('td', {}, version(summary.production, 'Production'))
    );
    tr.addEventListener('click', open);
    return tr;
  }

  dispose(): void {
    window.clearTimeout(this.typing);
    Signal.disconnectReceiver(this);
    super.dispose();
  }

  private filterInput: HTMLInputElement;
  private errorBox: HTMLElement;
  private table: HTMLTableElement;
  private more: HTMLElement;
  private typing = 0;
}

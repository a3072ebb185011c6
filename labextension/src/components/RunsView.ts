// The Runs tab: experiment picker, search filter, chosen metric/param columns, and the runs
// table — the active notebook's runs first, then the rest — with a selection to compare.
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';
import { IColumns, IRunRow, PanelModel } from '../model';
import { formatNumber, shortRunId } from '../../widgets/lib/format';
import { IPanelActions } from './actions';
import { button, formatAgo, formatDate, h, message, runDuration, statusDot } from './dom';

const FILTER_HINT = "metrics.loss < 0.1 AND params.lr = '0.01'";

export class RunsView extends Widget {
  constructor(
    private model: PanelModel,
    private actions: IPanelActions
  ) {
    super();
    this.addClass('jp-Labtrack-runs');
    this.experimentSelect = h('select', {
      className: 'jp-Labtrack-experiment',
      title: 'Experiment'
    });
    this.experimentSelect.addEventListener('change', () => {
      void this.model.setExperiment(this.experimentSelect.value);
    });
    this.filterInput = h('input', {
      type: 'search',
      className: 'jp-Labtrack-filter',
      placeholder: `Filter, e.g. ${FILTER_HINT}`,
      title: `MLflow's search grammar, e.g. ${FILTER_HINT} (Enter to apply)`,
      spellcheck: false
    });
    this.filterInput.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        void this.model.setFilter(this.filterInput.value);
      } else if (event.key === 'Escape') {
        this.filterInput.value = '';
        void this.model.setFilter('');
      }
    });
    // A cleared search box (its × button) applies at once.
    this.filterInput.addEventListener('search', () => {
      if (!this.filterInput.value) {
        void this.model.setFilter('');
      }
    });
    this.compareButton = button('Compare', () => this.actions.compareRuns(this.selectedInOrder()), {
      className: 'jp-mod-accept jp-Labtrack-compare',
      title: 'Open the selected runs side by side'
    });
    this.clearButton = button('Clear', () => this.model.clearSelection(), {
      title: 'Clear the selection'
    });
    this.columnsBox = h('details', { className: 'jp-Labtrack-columns' });
    this.errorBox = h('div', { className: 'jp-Labtrack-error-slot' });
    this.table = h('table', { className: 'jp-Labtrack-table jp-Labtrack-runs-table' });
    this.more = h('div', { className: 'jp-Labtrack-more' });
    this.node.append(
      h(
        'div',
        { className: 'jp-Labtrack-toolbar' },
        this.experimentSelect,
        button('↻', () => void this.model.loadRuns(), { title: 'Reload the runs' })
      ),
      this.filterInput,
      h(
        'div',
        { className: 'jp-Labtrack-toolbar' },
        this.columnsBox,
        h('span', { className: 'jp-Labtrack-spacer' }),
        this.clearButton,
        this.compareButton
      ),
      this.errorBox,
      h('div', { className: 'jp-Labtrack-scroll' }, this.table, this.more)
    );
    model.changed.connect((_, change) => {
      if (change === 'experiments') {
        this.renderExperiments();
      } else if (change === 'runs' || change === 'columns') {
        this.renderColumns();
        this.renderRuns();
      } else if (change === 'selection') {
        this.renderSelection();
      }
    }, this);
    this.renderExperiments();
    this.renderColumns();
    this.renderRuns();
  }

  private renderExperiments(): void {
    const options = [
      h('option', { value: '', textContent: 'All experiments' }),
      ...this.model.experiments.map(e =>
        h('option', { value: e.experiment_id, textContent: e.name })
      )
    ];
    this.experimentSelect.replaceChildren(...options);
    this.experimentSelect.value = this.model.experimentId;
  }

  private renderColumns(): void {
    const available = this.model.availableColumns;
    const chosen = this.model.columns;
    const open = this.columnsBox.open;
    const group = (title: string, kind: keyof IColumns, keys: string[]) => {
      if (!keys.length) {
        return null;
      }
      return h(
        'div',
        { className: 'jp-Labtrack-chips' },
        h('span', { className: 'jp-Labtrack-chips-title', textContent: title }),
        ...keys.map(key => {
          const on = chosen[kind].includes(key);
          const chip = button(key, () => {
            const next = { metrics: [...chosen.metrics], params: [...chosen.params] };
            next[kind] = on ? next[kind].filter(k => k !== key) : [...next[kind], key];
            this.model.setColumns(next);
          }, { className: 'jp-Labtrack-chip' });
          chip.setAttribute('aria-pressed', String(on));
          return chip;
        })
      );
    };
    this.columnsBox.replaceChildren(
      h('summary', {
        textContent: `Columns (${chosen.metrics.length + chosen.params.length})`,
        title: 'Choose the metrics and params shown'
      }),
      group('metrics', 'metrics', available.metrics) ?? '',
      group('params', 'params', available.params) ?? '',
      !available.metrics.length && !available.params.length
        ? message('No metrics or params in these runs.')
        : ''
    );
    this.columnsBox.open = open;
  }

  /** The selected runs as the table lists them (those no longer listed last). */
  private selectedInOrder(): string[] {
    const selected = this.model.selection;
    const listed = this.model.runs.map(r => r.run.info.run_id).filter(id => selected.has(id));
    return [...listed, ...[...selected].filter(id => !listed.includes(id))];
  }

  private renderSelection(): void {
    const count = this.model.selection.size;
    this.compareButton.textContent = count ? `Compare (${count})` : 'Compare';
    this.compareButton.disabled = count < 2;
    this.compareButton.title =
      count < 2 ? 'Select two or more runs to compare them' : `Compare ${count} runs`;
    this.clearButton.hidden = count === 0;
    for (const box of this.table.querySelectorAll<HTMLInputElement>('input[data-run-id]')) {
      box.checked = this.model.selection.has(box.dataset.runId!);
      box.closest('tr')?.classList.toggle('jp-mod-selected', box.checked);
    }
  }

  private renderRuns(): void {
    const model = this.model;
    const { metrics, params } = model.columns;
    const error = model.runsError;
    this.errorBox.replaceChildren(error ? message(error.readable, 'error') : '');
    if (this.filterInput !== document.activeElement) {
      this.filterInput.value = model.filter;
    }
    this.filterInput.classList.toggle('jp-mod-invalid', error?.status === 400);

    const head = h(
      'tr',
      {},
      h('th', { className: 'jp-Labtrack-check' }),
      h('th', { textContent: 'Run', title: 'Status, name, start and duration' }),
      ...metrics.map(key => h('th', { className: 'jp-mod-metric', textContent: key, title: `metrics.${key}` })),
      ...params.map(key => h('th', { className: 'jp-mod-param', textContent: key, title: `params.${key}` }))
    );
    const width = 2 + metrics.length + params.length;
    const body = h('tbody');
    const notebook = model.notebookPath;
    if (notebook) {
      const name = notebook.split('/').pop() ?? notebook;
      body.append(this.section(`This notebook · ${name}`, model.notebookRuns.length, width, model.notebookFile ?? notebook));
      if (!model.notebookRuns.length) {
        body.append(this.emptyRow(width, model.filter ? 'No run of this notebook matches the filter.' : 'No runs from this notebook yet.'));
      }
      for (const row of model.notebookRuns) {
        body.append(this.row(row, metrics, params, true));
      }
      body.append(this.section('Other runs', model.otherRuns.length, width));
    }
    for (const row of model.otherRuns) {
      body.append(this.row(row, metrics, params, false));
    }
    if (!model.otherRuns.length && !error) {
      const text = !model.connected
        ? 'Waiting for the server…'
        : model.filter
          ? 'No runs match the filter.'
          : notebook
            ? 'No other runs.'
            : 'No runs yet. Log one from a notebook: with labtrack.start_run(): labtrack.log_metric("loss", 0.1)';
      body.append(this.emptyRow(width, text));
    }
    this.table.replaceChildren(h('thead', {}, head), body);
    this.more.replaceChildren(
      model.runsToken
        ? button(model.runsLoading ? 'Loading…' : 'Load more runs', () => void model.loadMoreRuns(), {
            className: 'jp-Labtrack-load-more'
          })
        : ''
    );
    this.renderSelection();
  }

  private section(title: string, count: number, width: number, tooltip = ''): HTMLElement {
    return h(
      'tr',
      { className: 'jp-Labtrack-section' },
      h('th', { colSpan: width, title: tooltip }, `${title} `, h('span', { className: 'jp-Labtrack-count', textContent: `(${count})` }))
    );
  }

  private emptyRow(width: number, text: string): HTMLElement {
    return h('tr', { className: 'jp-Labtrack-empty' }, h('td', { colSpan: width, textContent: text }));
  }

  private row(row: IRunRow, metrics: string[], params: string[], mine: boolean): HTMLElement {
    const info = row.run.info;
    const id = info.run_id;
    const box = h('input', {
      type: 'checkbox',
      checked: this.model.selection.has(id),
      title: 'Select to compare',
      dataset: { runId: id }
    });
    box.addEventListener('change', () => this.model.toggleSelected(id, box.checked));
    box.addEventListener('click', event => event.stopPropagation());
    const name = h('a', {
      className: 'jp-Labtrack-link',
      href: '#',
      textContent: info.run_name || shortRunId(id),
      title: `Open run ${id}`
    });
    name.addEventListener('click', event => {
      event.preventDefault();
      event.stopPropagation();
      this.actions.openRun(id);
    });
    const tr = h(
      'tr',
      {
        className: `jp-Labtrack-run${mine ? ' jp-mod-notebook' : ''}`,
        dataset: { runId: id }
      },
      h('td', { className: 'jp-Labtrack-check' }, box),
      h(
        'td',
        { className: 'jp-Labtrack-name' },
        h('div', { className: 'jp-Labtrack-name-line' }, statusDot(info.status), name),
        h(
          'div',
          { className: 'jp-Labtrack-when' },
          h('span', { className: 'jp-Labtrack-start', textContent: formatAgo(info.start_time), title: formatDate(info.start_time) }),
          info.start_time ? ' · ' : '',
          h('span', { className: 'jp-Labtrack-duration', textContent: runDuration(info), title: 'Duration' })
        )
      ),
      ...metrics.map(key => {
        const value = row.metrics.get(key);
        return h('td', {
          className: 'jp-mod-number',
          textContent: value === undefined ? '' : formatNumber(value),
          title: value === undefined ? '' : String(value)
        });
      }),
      ...params.map(key =>
        h('td', { textContent: row.params.get(key) ?? '', title: row.params.get(key) ?? '' })
      )
    );
    tr.addEventListener('click', () => this.model.toggleSelected(id));
    tr.addEventListener('dblclick', () => this.actions.openRun(id));
    return tr;
  }

  dispose(): void {
    Signal.disconnectReceiver(this);
    super.dispose();
  }

  private experimentSelect: HTMLSelectElement;
  private filterInput: HTMLInputElement;
  private compareButton: HTMLButtonElement;
  private clearButton: HTMLButtonElement;
  private columnsBox: HTMLDetailsElement;
  private errorBox: HTMLElement;
  private table: HTMLTableElement;
  private more: HTMLElement;
}

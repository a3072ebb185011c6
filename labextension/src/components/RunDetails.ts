// A run in the main area: what it is (status, times, user, experiment, source), a link back to
// the notebook that produced it, params, metrics with their charts, tags and artifacts. While
// the run is RUNNING it reloads itself (a Poll that stands by while the tab is hidden).
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { Poll } from '@lumino/polling';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';
import { formatNumber, shortRunId } from '../../widgets/lib/format';
import { colorFor } from '../../widgets/lib/colors';
import { LabtrackApi } from '../api';
import { asApiError, relativeTo, runRow } from '../model';
import { IRun } from '../tokens';
import { IPanelActions } from './actions';
import { ArtifactBrowser } from './ArtifactBrowser';
import {
  button,
  formatDate,
  h,
  keyValueTable,
  message,
  runDuration,
  statusPill
} from './dom';
import { MetricCharts } from './MetricCharts';

const SYSTEM_TAG = /^(mlflow|labtrack)\./;

export interface IRunDetailsOptions {
  api: LabtrackApi;
  runId: string;
  actions: IPanelActions;
  /** The Jupyter server's root folder, to turn a run's notebook into a JupyterLab path. */
  rootDir: () => string | null;
  rendermime: IRenderMimeRegistry | null;
}

export class RunDetails extends Widget {
  readonly runId: string;

  constructor(private options: IRunDetailsOptions) {
    super();
    this.runId = options.runId;
    this.addClass('jp-Labtrack-details');
    this.addClass('jp-Labtrack-run-details');
    this.id = `labtrack-run-${options.runId}`;
    this.title.label = `Run ${shortRunId(options.runId)}`;
    this.title.closable = true;
    this.charts = new MetricCharts(options.api);
    this.artifacts = new ArtifactBrowser(options.api, options.runId, options.rendermime);
    this.poll = new Poll({
      name: `labtrack:run-${options.runId}`,
      auto: false,
      factory: () => this.reload(),
      frequency: { interval: 5000, backoff: true, max: 120000 },
      standby: () => !this.isVisible || 'when-hidden'
    });
  }

  /** Read the run and draw everything. */
  async load(): Promise<void> {
    this.node.replaceChildren(message('Loading…'));
    try {
      await this.reload();
    } catch (error) {
      this.node.replaceChildren(
        h('div', { className: 'jp-Labtrack-page' }, h('h2', { textContent: `Run ${this.runId}` }), message(asApiError(error).readable, 'error'))
      );
      return;
    }
    void this.artifacts.load();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    if (this.run?.info.status === 'RUNNING') {
      void this.poll.refresh();
    }
  }

  private async reload(): Promise<void> {
    const run = await this.options.api.getRun(this.runId);
    const changed = JSON.stringify(run) !== JSON.stringify(this.run);
    this.run = run;
    if (!this.experimentName || this.experimentId !== run.info.experiment_id) {
      this.experimentId = run.info.experiment_id;
      this.experimentName = await this.options.api
        .getExperiment(run.info.experiment_id)
        .then(e => e.name)
        .catch(() => run.info.experiment_id);
    }
    if (!this.rendered) {
      this.renderPage();
      this.rendered = true;
    } else if (changed) {
      this.renderSummary();
    }
    if (changed) {
      const keys = run.data.metrics.map(m => m.key).sort((a, b) => a.localeCompare(b));
      this.charts.setRuns([{ runId: this.runId, label: run.info.run_name || this.runId, color: colorFor(0) }], keys);
      void this.charts.load();
    }
    if (run.info.status === 'RUNNING') {
      if (this.poll.state.phase === 'constructed' || this.poll.state.phase === 'stopped') {
        void this.poll.start();
      }
    } else {
      void this.poll.stop();
    }
  }

  private renderPage(): void {
    this.summary = h('div', { className: 'jp-Labtrack-summary' });
    this.node.replaceChildren(
      h(
        'div',
        { className: 'jp-Labtrack-page' },
        this.summary,
        h('h3', { textContent: 'Metrics' }),
        this.charts.node,
        h('h3', { textContent: 'Artifacts' }),
        this.artifacts.node
      )
    );
    this.renderSummary();
  }

  private renderSummary(): void {
    const run = this.run!;
    const info = run.info;
    const row = runRow(run);
    this.title.label = `Run: ${info.run_name || shortRunId(info.run_id)}`;
    this.title.caption = `${info.run_name} (${info.run_id}) in ${this.experimentName}`;
    const notebookFile = row.tags.get('labtrack.notebook.path') ??
      (row.tags.get('mlflow.source.type') === 'NOTEBOOK' ? row.tags.get('mlflow.source.name') : undefined);
    let notebook: Node | string = '';
    if (notebookFile) {
      const path = relativeTo(this.options.rootDir(), notebookFile);
      if (path) {
        const link = h('a', { href: '#', className: 'jp-Labtrack-link jp-Labtrack-notebook-link', textContent: `Open ${path}`, title: notebookFile });
        link.addEventListener('click', event => {
          event.preventDefault();
          this.options.actions.openNotebook(path);
        });
        notebook = link;
      } else {
        notebook = h('span', { textContent: `${notebookFile} (outside the folder Jupyter serves)` });
      }
    }
    const source = row.tags.get('mlflow.source.name');
    const commit = row.tags.get('mlflow.source.git.commit');
    const facts: [string, Node | string][] = [
      ['Status', statusPill(info.status)],
      ['Experiment', this.experimentName],
      ['Run id', h('code', { textContent: info.run_id })],
      ['User', info.user_id],
      ['Started', formatDate(info.start_time)],
      ['Duration', runDuration(info)]
    ];
    if (notebook) {
      facts.push(['Notebook', notebook]);
    } else if (source) {
      facts.push(['Source', source]);
    }
    if (commit) {
      facts.push(['Git commit', `${commit.slice(0, 12)}${row.tags.get('labtrack.git.dirty') === 'true' ? ' (uncommitted changes)' : ''}`]);
    }
    const params = [...row.params].sort(([a], [b]) => a.localeCompare(b));
    const metrics = [...run.data.metrics].sort((a, b) => a.key.localeCompare(b.key));
    const tags = [...row.tags].sort(([a], [b]) => a.localeCompare(b));
    const userTags = tags.filter(([key]) => !SYSTEM_TAG.test(key));
    const systemTags = tags.filter(([key]) => SYSTEM_TAG.test(key));
    this.summary.replaceChildren(
      h(
        'div',
        { className: 'jp-Labtrack-page-title' },
        h('h2', { textContent: info.run_name || info.run_id }),
        button('↻', () => void this.reload().catch(error => this.summary.append(message(asApiError(error).readable, 'error'))), { title: 'Reload the run' })
      ),
      h(
        'div',
        { className: 'jp-Labtrack-columns-3' },
        h('section', {}, h('h3', { textContent: 'Run' }), keyValueTable(facts)),
        h(
          'section',
          { className: 'jp-Labtrack-params' },
          h('h3', { textContent: `Params (${params.length})` }),
          params.length ? keyValueTable(params.map(([k, v]) => [k, v])) : message('No params.')
        ),
        h(
          'section',
          { className: 'jp-Labtrack-metric-values' },
          h('h3', { textContent: `Latest metrics (${metrics.length})` }),
          metrics.length
            ? keyValueTable(metrics.map(m => [m.key, `${formatNumber(row.metrics.get(m.key))}  (step ${m.step})`]))
            : message('No metrics.')
        )
      ),
      h(
        'section',
        { className: 'jp-Labtrack-tags' },
        h('h3', { textContent: `Tags (${userTags.length})` }),
        userTags.length ? keyValueTable(userTags.map(([k, v]) => [k, v])) : message('No tags.'),
        systemTags.length
          ? h('details', {}, h('summary', { textContent: `System tags (${systemTags.length})` }), keyValueTable(systemTags.map(([k, v]) => [k, v])))
          : ''
      )
    );
  }

  dispose(): void {
    this.poll.dispose();
    this.charts.dispose();
    this.artifacts.dispose();
    super.dispose();
  }

  private run: IRun | null = null;
  private experimentId = '';
  private experimentName = '';
  private rendered = false;
  private summary!: HTMLElement;
  private charts: MetricCharts;
  private artifacts: ArtifactBrowser;
  private poll: Poll;
}

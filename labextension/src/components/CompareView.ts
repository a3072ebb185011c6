// Runs side by side in the main area: metric line charts (one line per run, in the run's
// colour everywhere), parallel coordinates over params and metrics, and a table of every
// param and metric with the rows that differ marked (or only those shown).
import { Widget } from '@lumino/widgets';
import { colorFor } from '../../widgets/lib/colors';
import { formatNumber, shortRunId } from '../../widgets/lib/format';
import { LabtrackApi } from '../api';
import { IRunRow, asApiError, runRow } from '../model';
import { IPanelActions } from './actions';
import { button, formatDate, h, message, runDuration, statusPill } from './dom';
import { MetricCharts } from './MetricCharts';
import { ParallelCoordinates } from './ParallelCoordinates';

/** Rows of the diff table: [label, one value per run]. */
export function diffRows(rows: IRunRow[]): { group: string; key: string; values: string[]; differs: boolean }[] {
  const out: { group: string; key: string; values: string[]; differs: boolean }[] = [];
  const keys = (pick: (r: IRunRow) => Map<string, unknown>) =>
    [...new Set(rows.flatMap(r => [...pick(r).keys()]))].sort((a, b) => a.localeCompare(b));
  for (const key of keys(r => r.params)) {
    const values = rows.map(r => r.params.get(key) ?? '');
    out.push({ group: 'params', key, values, differs: new Set(values).size > 1 });
  }
  for (const key of keys(r => r.metrics)) {
    const numbers = rows.map(r => r.metrics.get(key));
    const values = numbers.map(v => (v === undefined ? '' : formatNumber(v)));
    const distinct = new Set(numbers.map(v => (v === undefined ? 'missing' : String(v))));
    out.push({ group: 'metrics', key, values, differs: distinct.size > 1 });
  }
  return out;
}

export class CompareView extends Widget {
  constructor(
    private api: LabtrackApi,
    readonly runIds: string[],
    private actions: IPanelActions
  ) {
    super();
    this.addClass('jp-Labtrack-details');
    this.addClass('jp-Labtrack-compare-view');
    this.id = `labtrack-compare-${runIds.join('-').slice(0, 200)}`;
    this.title.label = `Compare ${runIds.length} runs`;
    this.title.closable = true;
    this.charts = new MetricCharts(api);
    this.parallel = new ParallelCoordinates();
  }

  async load(): Promise<void> {
    this.node.replaceChildren(message('Loading…'));
    const results = await Promise.allSettled(this.runIds.map(id => this.api.getRun(id)));
    const failures = results
      .map((r, i) => (r.status === 'rejected' ? `${this.runIds[i]}: ${asApiError(r.reason).readable}` : ''))
      .filter(Boolean);
    this.rows = results.flatMap(r => (r.status === 'fulfilled' ? [runRow(r.value)] : []));
    const colored = this.rows.map((row, i) => ({
      row,
      label: row.run.info.run_name || shortRunId(row.run.info.run_id),
      color: colorFor(i)
    }));
    this.title.caption = colored.map(c => c.label).join(', ');

    const legend = h(
      'div',
      { className: 'jp-Labtrack-legend' },
      ...colored.map(({ row, label, color }) => {
        const link = h('a', { href: '#', className: 'jp-Labtrack-link', textContent: label, title: `Open ${row.run.info.run_id}` });
        link.addEventListener('click', event => {
          event.preventDefault();
          this.actions.openRun(row.run.info.run_id);
        });
        return h(
          'span',
          { className: 'jp-Labtrack-legend-item', dataset: { runId: row.run.info.run_id } },
          h('span', { className: 'jp-Labtrack-swatch', style: { background: color } }),
          link,
          ' ',
          statusPill(row.run.info.status)
        );
      })
    );

    const metricKeys = [...new Set(this.rows.flatMap(r => [...r.metrics.keys()]))].sort((a, b) => a.localeCompare(b));
    this.charts.setRuns(
      colored.map(c => ({ runId: c.row.run.info.run_id, label: c.label, color: c.color })),
      metricKeys
    );

    const diff = diffRows(this.rows);
    const axisNames = diff.map(d => `${d.group}.${d.key}`);
    const differing = diff.filter(d => d.group === 'params' && d.differs).map(d => `params.${d.key}`);
    const chosen = [...differing.slice(0, 6), ...metricKeys.slice(0, 4).map(k => `metrics.${k}`)];

    this.diffBox = h('div');
    this.onlyDiffers = h('input', { type: 'checkbox', checked: false });
    this.onlyDiffers.addEventListener('change', () => this.renderDiff());

    this.node.replaceChildren(
      h(
        'div',
        { className: 'jp-Labtrack-page' },
        h(
          'div',
          { className: 'jp-Labtrack-page-title' },
          h('h2', { textContent: `Comparing ${this.rows.length} runs` }),
          button('↻', () => void this.load(), { title: 'Read the runs again' })
        ),
        failures.length ? message(`Some runs could not be read: ${failures.join('; ')}`, 'error') : '',
        legend,
        h('h3', { textContent: 'Metrics' }),
        this.charts.node,
        h('h3', { textContent: 'Parallel coordinates' }),
        this.parallel.node,
        h(
          'div',
          { className: 'jp-Labtrack-page-title' },
          h('h3', { textContent: 'Params and metrics' }),
          h('label', { className: 'jp-Labtrack-meta' }, this.onlyDiffers, ' only the differences')
        ),
        this.diffBox
      )
    );
    this.parallel.setRuns(colored, axisNames, chosen.length >= 2 ? chosen : axisNames.slice(0, 6));
    this.renderDiff();
    await this.charts.load();
  }

  private renderDiff(): void {
    const rows = diffRows(this.rows);
    const shown = this.onlyDiffers.checked ? rows.filter(r => r.differs) : rows;
    const header = h(
      'tr',
      {},
      h('th', { textContent: '' }),
      ...this.rows.map((row, i) =>
        h('th', {}, h('span', { className: 'jp-Labtrack-swatch', style: { background: colorFor(i) } }), row.run.info.run_name || shortRunId(row.run.info.run_id))
      )
    );
    const facts: [string, (r: IRunRow) => string][] = [
      ['status', r => r.run.info.status],
      ['start', r => formatDate(r.run.info.start_time)],
      ['duration', r => runDuration(r.run.info)],
      ['user', r => r.run.info.user_id]
    ];
    const body = h('tbody');
    for (const [label, value] of facts) {
      body.append(h('tr', { className: 'jp-Labtrack-fact' }, h('th', { textContent: label }), ...this.rows.map(r => h('td', { textContent: value(r) }))));
    }
    let group = '';
    for (const row of shown) {
      if (row.group !== group) {
        group = row.group;
        body.append(h('tr', { className: 'jp-Labtrack-section' }, h('th', { colSpan: this.rows.length + 1, textContent: group })));
      }
      body.append(
        h(
          'tr',
          { className: row.differs ? 'jp-mod-differs' : '', dataset: { key: `${row.group}.${row.key}` } },
          h('th', { textContent: row.key }),
          ...row.values.map(v => h('td', { className: row.group === 'metrics' ? 'jp-mod-number' : '', textContent: v }))
        )
      );
    }
    if (!shown.length) {
      body.append(h('tr', { className: 'jp-Labtrack-empty' }, h('td', { colSpan: this.rows.length + 1, textContent: this.onlyDiffers.checked ? 'The runs have the same params and metrics.' : 'No params or metrics.' })));
    }
    this.diffBox.replaceChildren(h('table', { className: 'jp-Labtrack-table jp-Labtrack-diff' }, h('thead', {}, header), body));
  }

  dispose(): void {
    this.charts.dispose();
    this.parallel.dispose();
    super.dispose();
  }

  private rows: IRunRow[] = [];
  private charts: MetricCharts;
  private parallel: ParallelCoordinates;
  private diffBox: HTMLElement = h('div');
  private onlyDiffers: HTMLInputElement = h('input', { type: 'checkbox' });
}

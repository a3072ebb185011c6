// A registered model in the main area: its description (editable by editors), aliases, open
// requests (with the actions the user may take), versions — Version, Registered at, Created
// by, Stage, source run — with request / move / comment forms, and the activity history as a
// timeline. Every form shows the server's refusal in place.
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';
import { LabtrackApi } from '../api';
import {
  PanelModel,
  activityText,
  asApiError,
  atLeast,
  directTargets
} from '../model';
import {
  IActivity,
  IModelVersion,
  IRegisteredModelWithPermission,
  ITransitionRequest,
  STAGES,
  Stage
} from '../tokens';
import { IPanelActions } from './actions';
import { shortRunId } from '../../widgets/lib/format';
import { button, formatAgo, formatDate, h, message, stagePill } from './dom';
import { requestCard } from './RequestCard';

export const VERSION_COLUMNS = ['Version', 'Registered at', 'Created by', 'Stage', 'Source run', 'Aliases', ''];

type FormKind = 'request' | 'move' | 'comment';

export class ModelPage extends Widget {
  constructor(
    private api: LabtrackApi,
    readonly modelName: string,
    private panel: PanelModel,
    private actions: IPanelActions
  ) {
    super();
    this.addClass('jp-Labtrack-details');
    this.addClass('jp-Labtrack-model-page');
    this.id = `labtrack-model-${encodeURIComponent(modelName)}`;
    this.title.label = `Model: ${modelName}`;
    this.title.closable = true;
    // An approval in the side panel (or here) changes this model: read it again.
    panel.changed.connect((_, change) => {
      if (change === 'registry' && !this.busy && !this.announcing) {
        void this.load();
      }
    }, this);
  }

  /** Read the model, its versions, requests and history, and draw them. */
  async load(): Promise<void> {
    this.busy = true;
    try {
      const [model, versions, requests, history] = await Promise.all([
        this.api.getRegisteredModel(this.modelName),
        this.api.searchModelVersions(this.modelName),
        this.api.listTransitionRequests(this.modelName),
        this.api.listActivities(this.modelName)
      ]);
      this.model = model;
      this.versions = versions;
      this.requests = requests;
      this.history = history.items;
      this.historyToken = history.nextPageToken;
      this.error = '';
    } catch (error) {
      this.error = asApiError(error).readable;
    } finally {
      this.busy = false;
    }
    this.render();
  }

  private async act(work: () => Promise<unknown>, done: string): Promise<boolean> {
    this.notice = '';
    this.actionError = '';
    try {
      await work();
    } catch (error) {
      this.actionError = asApiError(error).readable;
      this.render();
      return false;
    }
    this.notice = done;
    this.form = null;
    this.editing = false;
    await this.load();
    this.announcing = true; // this page is already up to date
    try {
      this.panel.registryChanged();
    } finally {
      this.announcing = false;
    }
    return true;
  }

  private render(): void {
    if (!this.model) {
      this.node.replaceChildren(
        h('div', { className: 'jp-Labtrack-page' }, h('h2', { textContent: this.modelName }), message(this.error || 'Loading…', this.error ? 'error' : 'note'))
      );
      return;
    }
    const model = this.model;
    const level = model.permission_level;
    this.node.replaceChildren(
      h(
        'div',
        { className: 'jp-Labtrack-page' },
        h(
          'div',
          { className: 'jp-Labtrack-page-title' },
          h('h2', { textContent: model.name }),
          button('↻', () => void this.load(), { title: 'Read the model again' })
        ),
        h(
          'div',
          { className: 'jp-Labtrack-meta' },
          `Created by ${model.user_id} ${formatAgo(model.creation_timestamp)} · your permission: ${level ?? 'none'}`
        ),
        this.error ? message(this.error, 'error') : '',
        this.notice ? message(this.notice, 'ok') : '',
        this.actionError ? message(this.actionError, 'error') : '',
        this.description(),
        this.aliases(),
        this.requests.length ? h('h3', { textContent: `Pending requests (${this.requests.length})` }) : '',
        ...this.requests.map(request => this.requestCard(request)),
        h('h3', { textContent: `Versions (${this.versions.length})` }),
        this.versionsTable(),
        h('h3', { textContent: 'History' }),
        this.timeline()
      )
    );
  }

  private description(): HTMLElement {
    const model = this.model!;
    const canEdit = atLeast(model.permission_level, 'CAN_EDIT');
    if (this.editing) {
      const text = h('textarea', { className: 'jp-Labtrack-description-input', rows: 4, value: model.description });
      return h(
        'section',
        { className: 'jp-Labtrack-description' },
        text,
        h(
          'div',
          { className: 'jp-Labtrack-buttons' },
          button('Save', () => void this.act(() => this.api.updateRegisteredModel(model.name, text.value), 'Description saved.'), { className: 'jp-mod-accept' }),
          button('Cancel', () => {
            this.editing = false;
            this.render();
          })
        )
      );
    }
    return h(
      'section',
      { className: 'jp-Labtrack-description' },
      h('p', { className: model.description ? '' : 'jp-Labtrack-none', textContent: model.description || 'No description.' }),
      canEdit
        ? button('Edit description', () => {
            this.editing = true;
            this.render();
          })
        : ''
    );
  }

  private aliases(): HTMLElement | string {
    const aliases = this.model!.aliases ?? [];
    if (!aliases.length) {
      return '';
    }
    return h(
      'div',
      { className: 'jp-Labtrack-alias-list' },
      'Aliases: ',
      ...aliases.map(a => h('span', { className: 'jp-Labtrack-alias', textContent: `@${a.alias} → v${a.version}` }))
    );
  }

  private requestCard(request: ITransitionRequest): HTMLElement {
    return requestCard(request, {
      resolve: async (r, action, comment, archive) => {
        const ok = await this.act(
          () => this.api.resolveTransitionRequest(action, r, comment, archive),
          `${action === 'APPROVE_TRANSITION_REQUEST' ? 'Approved' : action === 'REJECT_TRANSITION_REQUEST' ? 'Rejected' : 'Cancelled'}: version ${r.version} → ${r.to_stage}`
        );
        return ok;
      }
    });
  }

  private versionsTable(): HTMLElement {
    const level = this.model!.permission_level;
    const body = h('tbody');
    for (const version of this.versions) {
      const run = version.run_id
        ? (() => {
            const link = h('a', { href: '#', className: 'jp-Labtrack-link', textContent: shortRunId(version.run_id), title: `Open run ${version.run_id}` });
            link.addEventListener('click', event => {
              event.preventDefault();
              this.actions.openRun(version.run_id!);
            });
            return link;
          })()
        : h('span', { className: 'jp-Labtrack-none', textContent: version.source, title: version.source });
      const buttons: HTMLElement[] = [];
      if (atLeast(level, 'CAN_EDIT')) {
        buttons.push(button('Request…', () => this.openForm(version, 'request'), { title: 'Ask for a move to another stage' }));
      }
      if (directTargets(level, version.current_stage).length) {
        buttons.push(button('Move…', () => this.openForm(version, 'move'), { title: 'Move to another stage now' }));
      }
      if (atLeast(level, 'CAN_READ')) {
        buttons.push(button('Comment…', () => this.openForm(version, 'comment')));
      }
      body.append(
        h(
          'tr',
          { className: 'jp-Labtrack-version', dataset: { version: version.version } },
          h('td', { textContent: `v${version.version}` }),
          h('td', { textContent: formatDate(version.creation_timestamp) }),
          h('td', { textContent: version.user_id }),
          h('td', {}, stagePill(version.current_stage)),
          h('td', {}, run),
          h('td', { textContent: (version.aliases ?? []).map(a => `@${a}`).join(' ') }),
          h('td', { className: 'jp-Labtrack-buttons' }, ...buttons)
        )
      );
      if (this.form && this.form.version === version.version) {
        body.append(h('tr', { className: 'jp-Labtrack-form-row' }, h('td', { colSpan: VERSION_COLUMNS.length }, this.formFor(version, this.form.kind))));
      }
    }
    if (!this.versions.length) {
      body.append(h('tr', { className: 'jp-Labtrack-empty' }, h('td', { colSpan: VERSION_COLUMNS.length, textContent: 'No versions yet.' })));
    }
    return h(
      'table',
      { className: 'jp-Labtrack-table jp-Labtrack-versions' },
      h('thead', {}, h('tr', {}, ...VERSION_COLUMNS.map(c => h('th', { textContent: c })))),
      body
    );
  }

  private openForm(version: IModelVersion, kind: FormKind): void {
    const same = this.form?.version === version.version && this.form.kind === kind;
    this.form = same ? null : { version: version.version, kind };
    this.actionError = '';
    this.render();
  }

  private formFor(version: IModelVersion, kind: FormKind): HTMLElement {
    const level = this.model!.permission_level;
    const comment = h('textarea', { className: 'jp-Labtrack-comment', rows: 2, placeholder: kind === 'comment' ? 'Comment' : 'Comment (optional)' });
    if (kind === 'comment') {
      return h(
        'div',
        { className: 'jp-Labtrack-form', dataset: { form: kind } },
        comment,
        button('Comment', () => {
          if (comment.value.trim()) {
            void this.act(() => this.api.createComment(this.modelName, version.version, comment.value.trim()), `Commented on version ${version.version}.`);
          }
        }, { className: 'jp-mod-accept' })
      );
    }
    const targets = kind === 'move' ? directTargets(level, version.current_stage) : STAGES.filter(s => s !== version.current_stage);
    const stage = h('select', { className: 'jp-Labtrack-stage-select' }, ...targets.map(s => h('option', { value: s, textContent: s })));
    const archive = h('input', { type: 'checkbox' });
    const archiveLabel = h('label', { className: 'jp-Labtrack-archive' }, archive, ' archive the current version of that stage');
    const sync = () => {
      archiveLabel.hidden = !(stage.value === 'Production' || stage.value === 'Staging');
    };
    stage.addEventListener('change', sync);
    sync();
    const submit = kind === 'request'
      ? button('Request', () => void this.act(() => this.api.createTransitionRequest(this.modelName, version.version, stage.value as Stage, comment.value.trim()), `Requested: version ${version.version} → ${stage.value}`), { className: 'jp-mod-accept' })
      : button('Move', () => void this.act(() => this.api.transitionStage(this.modelName, version.version, stage.value as Stage, archive.checked, comment.value.trim()), `Moved version ${version.version} to ${stage.value}`), { className: 'jp-mod-accept' });
    return h(
      'div',
      { className: 'jp-Labtrack-form', dataset: { form: kind } },
      h('label', {}, kind === 'request' ? 'Request a move to ' : 'Move to ', stage),
      kind === 'move' ? archiveLabel : '',
      comment,
      submit
    );
  }

  private timeline(): HTMLElement {
    const list = h('ol', { className: 'jp-Labtrack-timeline' });
    for (const activity of this.history) {
      list.append(this.entry(activity));
    }
    if (!this.history.length) {
      list.append(h('li', { className: 'jp-Labtrack-none', textContent: 'No activity yet.' }));
    }
    const more = this.historyToken
      ? button('Older activity', async () => {
          try {
            const page = await this.api.listActivities(this.modelName, this.historyToken);
            this.history = [...this.history, ...page.items];
            this.historyToken = page.nextPageToken;
          } catch (error) {
            this.actionError = asApiError(error).readable;
          }
          this.render();
        })
      : '';
    return h('div', {}, list, more);
  }

  private entry(activity: IActivity): HTMLElement {
    return h(
      'li',
      { className: 'jp-Labtrack-event', dataset: { type: activity.activity_type, version: activity.version ?? '' } },
      h('span', { className: 'jp-Labtrack-event-dot', dataset: { stage: activity.to_stage ?? '' } }),
      h(
        'div',
        {},
        h('div', { className: 'jp-Labtrack-event-text', textContent: activityText(activity) }),
        h('div', { className: 'jp-Labtrack-meta', title: formatDate(activity.creation_timestamp), textContent: formatDate(activity.creation_timestamp) }),
        activity.comment ? h('blockquote', { className: 'jp-Labtrack-quote', textContent: activity.comment }) : ''
      )
    );
  }

  dispose(): void {
    Signal.disconnectReceiver(this);
    super.dispose();
  }

  private model: IRegisteredModelWithPermission | null = null;
  private versions: IModelVersion[] = [];
  private requests: ITransitionRequest[] = [];
  private history: IActivity[] = [];
  private historyToken: string | undefined;
  private error = '';
  private notice = '';
  private actionError = '';
  private editing = false;
  private form: { version: string; kind: FormKind } | null = null;
  private busy = false;
  private announcing = false;
}

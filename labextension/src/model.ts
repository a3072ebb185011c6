// The side panel's state: the version handshake, runs (the active notebook's first), the
// registry's models and the pending transition requests. Views only read it and call its
// methods; it tells them what changed through `changed`. A Poll refreshes what is on screen,
// backing off while the server fails and standing by while the panel is hidden.
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';
import { ApiError, LabtrackApi } from './api';
import {
  API_VERSION,
  ActivityAction,
  IActivity,
  IExperiment,
  IRegisteredModel,
  IRun,
  IServerInfo,
  ITransitionRequest,
  PERMISSION_LEVELS,
  PermissionLevel,
  STAGES,
  Stage,
  WireNumber
} from './tokens';

export type Tab = 'runs' | 'models' | 'requests';

/** What changed, so a view redraws only its part. */
export type Change =
  | 'handshake'
  | 'tab'
  | 'experiments'
  | 'runs'
  | 'selection'
  | 'columns'
  | 'models'
  | 'requests'
  | 'registry';

export type HandshakeState = 'pending' | 'ok' | 'missing' | 'mismatch' | 'unreachable' | 'error';

export interface IHandshake {
  state: HandshakeState;
  /** What is wrong and what to do, for the user; empty when all is well. */
  message: string;
  info: IServerInfo | null;
}

/** The outcome of the version handshake: server-info's answer or the error getting it. */
export function handshakeOf(info: IServerInfo | null, error: ApiError | null): IHandshake {
  if (error) {
    if (error.status === 404) {
      return {
        state: 'missing',
        info: null,
        message:
          "labtrack's server extension is not running on this Jupyter server " +
          `(${error.url} answered 404). Install labtrack in the environment that runs ` +
          'Jupyter (pip install labtrack), check that `jupyter server extension list` shows ' +
          'it enabled, then restart Jupyter.'
      };
    }
    if (error.status === 0) {
      return {
        state: 'unreachable',
        info: null,
        message: `The Jupyter server does not answer (${error.message}). Retrying…`
      };
    }
    return { state: 'error', info: null, message: error.readable };
  }
  if (!info || info.name !== 'labtrack') {
    return {
      state: 'missing',
      info: null,
      message:
        'The server answered the labtrack handshake with something else ' +
        `(${JSON.stringify(info).slice(0, 80)}). Is another extension mounted at /labtrack?`
    };
  }
  if (info.api_version !== API_VERSION) {
    const newer = info.api_version > API_VERSION ? 'server' : 'panel';
    return {
      state: 'mismatch',
      info,
      message:
        `The labtrack server extension (version ${info.version}, API ${info.api_version}) ` +
        `does not match this panel (API ${API_VERSION}); the ${newer} is newer. Install one ` +
        'labtrack version for both (pip install -U labtrack in the environment that runs ' +
        'Jupyter), restart Jupyter and reload this page.'
    };
  }
  return { state: 'ok', info, message: '' };
}

/** A wire number ("NaN", "Infinity" …) as a number. */
export function toNumber(value: WireNumber | string | null | undefined): number {
  if (typeof value === 'number') {
    return value;
  }
  if (value === 'Infinity') {
    return Infinity;
  }
  if (value === '-Infinity') {
    return -Infinity;
  }
  return value === undefined || value === null ? NaN : Number(value);
}

export interface IRunRow {
  run: IRun;
  /** Latest metric values and params by key. */
  metrics: Map<string, number>;
  params: Map<string, string>;
  tags: Map<string, string>;
}

export function runRow(run: IRun): IRunRow {
  return {
    run,
    metrics: new Map(run.data.metrics.map(m => [m.key, toNumber(m.value)])),
    params: new Map(run.data.params.map(p => [p.key, p.value])),
    tags: new Map(run.data.tags.map(t => [t.key, t.value]))
  };
}

/** The newest version of a model and its newest Staging and Production versions. */
export function modelSummary(model: IRegisteredModel): {
  latest: string;
  staging: string;
  production: string;
  aliases: string[];
} {
  let latest = '';
  let staging = '';
  let production = '';
  const newer = (a: string, b: string) => (!b || Number(a) > Number(b) ? a : b);
  for (const version of model.latest_versions ?? []) {
    latest = newer(version.version, latest);
    if (version.current_stage === 'Staging') {
      staging = newer(version.version, staging);
    } else if (version.current_stage === 'Production') {
      production = newer(version.version, production);
    }
  }
  const aliases = (model.aliases ?? [])
    .map(a => `${a.alias}→v${a.version}`)
    .sort((a, b) => a.localeCompare(b));
  return { latest, staging, production, aliases };
}

export interface IColumns {
  metrics: string[];
  params: string[];
}

export interface IPanelModelOptions {
  api: LabtrackApi;
  /** Milliseconds between refreshes while the panel shows (default 5 s). */
  interval?: number;
  /** Longest back-off while the server fails (default 5 min). */
  maxInterval?: number;
  /** Milliseconds between checks of the pending requests, for the badge (default 60 s). */
  requestsInterval?: number;
  /** Runs and models read per page (default 100). */
  pageSize?: number;
  /** Start polling at once (default true). */
  auto?: boolean;
}

const MAX_LOADED = 50000;

/** The panel's state and the calls that change it. */
export class PanelModel implements IDisposable {
  readonly api: LabtrackApi;
  readonly pageSize: number;

  handshake: IHandshake = { state: 'pending', message: '', info: null };
  /** The Jupyter server's root folder (notebook paths in JupyterLab are relative to it). */
  rootDir: string | null = null;
  tab: Tab = 'runs';

  experiments: IExperiment[] = [];
  /** '' for every experiment. */
  experimentId = '';
  filter = '';
  /** The active notebook, as JupyterLab names it (relative to the server root). */
  notebookPath: string | null = null;
  /** The same notebook as kernels record it (absolute), from the server. */
  notebookFile: string | null = null;
  notebookRuns: IRunRow[] = [];
  /** Runs other than the notebook's, newest first. */
  otherRuns: IRunRow[] = [];
  runsToken: string | undefined;
  runsError: ApiError | null = null;
  runsLoading = false;
  selection = new Set<string>();
  columns: IColumns = { metrics: [], params: [] };

  models: IRegisteredModel[] = [];
  modelsFilter = '';
  modelsToken: string | undefined;
  modelsError: ApiError | null = null;
  modelsLoading = false;

  requests: ITransitionRequest[] = [];
  requestsError: ApiError | null = null;
  /** The error of the last action on a request, by request id. */
  requestErrors = new Map<string, string>();
  /** What the last registry action did, for the user. */
  notice = '';

  constructor(options: IPanelModelOptions) {
    this.api = options.api;
    this.pageSize = options.pageSize ?? 100;
    this._runsLimit = this.pageSize;
    this._modelsLimit = this.pageSize;
    this.poll = new Poll({
      name: 'labtrack:panel',
      auto: options.auto ?? true,
      factory: () => this.tick(),
      frequency: {
        interval: options.interval ?? 5000,
        backoff: true,
        max: options.maxInterval ?? 300000
      },
      standby: () => !this._visible || 'when-hidden'
    });
    this.requestsPoll = new Poll({
      name: 'labtrack:requests',
      auto: options.auto ?? true,
      factory: () => this.tickRequests(),
      frequency: {
        interval: options.requestsInterval ?? 60000,
        backoff: true,
        max: options.maxInterval ?? 300000
      },
      standby: 'when-hidden'
    });
  }

  /** Ticks while the panel shows: handshake until it succeeds, then what is on screen. */
  readonly poll: Poll;
  /** Ticks even while the panel is hidden (not while the browser tab is): the badge. */
  readonly requestsPoll: Poll;

  get changed(): ISignal<this, Change> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  get visible(): boolean {
    return this._visible;
  }

  get connected(): boolean {
    return this.handshake.state === 'ok';
  }

  /** Open requests (the count on the panel's icon). */
  get pendingCount(): number {
    return this.requests.length;
  }

  /** Notebook runs first, then the others. */
  get runs(): IRunRow[] {
    return [...this.notebookRuns, ...this.otherRuns];
  }

  /** Metric and param keys of the loaded runs, sorted. */
  get availableColumns(): IColumns {
    const metrics = new Set<string>();
    const params = new Set<string>();
    for (const row of this.runs) {
      row.metrics.forEach((_, key) => metrics.add(key));
      row.params.forEach((_, key) => params.add(key));
    }
    const sorted = (keys: Set<string>) => [...keys].sort((a, b) => a.localeCompare(b));
    return { metrics: sorted(metrics), params: sorted(params) };
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this.poll.dispose();
    this.requestsPoll.dispose();
    Signal.clearData(this);
  }

  // -- what the views call ------------------------------------------------------------------

  /** The panel was shown (refresh now) or hidden (stop polling). */
  setVisible(visible: boolean): void {
    if (visible === this._visible) {
      return;
    }
    this._visible = visible;
    if (visible) {
      void this.poll.refresh();
    }
  }

  setTab(tab: Tab): void {
    if (tab !== this.tab) {
      this.tab = tab;
      this.emit('tab');
      void this.poll.refresh();
    }
  }

  /** Check the server now and reload what is shown. */
  async refresh(): Promise<void> {
    await this.tick();
  }

  async setExperiment(experimentId: string): Promise<void> {
    if (experimentId === this.experimentId) {
      return;
    }
    this.experimentId = experimentId;
    this._runsLimit = this.pageSize;
    this.emit('experiments');
    await this.loadRuns();
  }

  async setFilter(filter: string): Promise<void> {
    const trimmed = filter.trim();
    if (trimmed === this.filter && !this.runsError) {
      return;
    }
    this.filter = trimmed;
    this._runsLimit = this.pageSize;
    await this.loadRuns();
  }

  /** The notebook in focus changed (null: none). */
  async setNotebookPath(path: string | null): Promise<void> {
    if (path === this.notebookPath) {
      return;
    }
    this.notebookPath = path;
    if (this.connected) {
      await this.loadRuns();
    }
  }

  toggleSelected(runId: string, selected?: boolean): void {
    const on = selected ?? !this.selection.has(runId);
    if (on) {
      this.selection.add(runId);
    } else {
      this.selection.delete(runId);
    }
    this.emit('selection');
  }

  clearSelection(): void {
    if (this.selection.size) {
      this.selection.clear();
      this.emit('selection');
    }
  }

  setColumns(columns: IColumns): void {
    this.columns = { metrics: [...columns.metrics], params: [...columns.params] };
    this._columnsChosen = true;
    this.emit('columns');
  }

  async loadMoreRuns(): Promise<void> {
    if (!this.runsToken) {
      return;
    }
    const seq = ++this._runsSeq;
    this.runsLoading = true;
    this.emit('runs');
    try {
      const page = await this.api.panelRuns({
        experimentIds: this.experimentIds(),
        filter: this.filter,
        maxResults: this.pageSize,
        pageToken: this.runsToken
      });
      if (seq !== this._runsSeq) {
        return;
      }
      const seen = new Set(this.runs.map(r => r.run.info.run_id));
      this.otherRuns = [
        ...this.otherRuns,
        ...page.runs.filter(r => !seen.has(r.info.run_id)).map(runRow)
      ];
      this.runsToken = page.next_page_token;
      this._runsLimit = Math.min(this._runsLimit + this.pageSize, MAX_LOADED);
      this.runsError = null;
    } catch (error) {
      if (seq === this._runsSeq) {
        this.runsError = asApiError(error);
      }
    } finally {
      if (seq === this._runsSeq) {
        this.runsLoading = false;
        this._runsSignature = '';
        this.emit('runs');
      }
    }
  }

  async setModelsFilter(filter: string): Promise<void> {
    const trimmed = filter.trim();
    if (trimmed === this.modelsFilter && !this.modelsError) {
      return;
    }
    this.modelsFilter = trimmed;
    this._modelsLimit = this.pageSize;
    await this.loadModels();
  }

  async loadMoreModels(): Promise<void> {
    if (!this.modelsToken) {
      return;
    }
    const seq = ++this._modelsSeq;
    try {
      const page = await this.api.searchRegisteredModels(
        this.modelsFilterString(),
        this.modelsToken,
        this.pageSize
      );
      if (seq !== this._modelsSeq) {
        return;
      }
      this.models = [...this.models, ...page.items];
      this.modelsToken = page.nextPageToken;
      this._modelsLimit = Math.min(this._modelsLimit + this.pageSize, 1000);
      this.modelsError = null;
    } catch (error) {
      if (seq === this._modelsSeq) {
        this.modelsError = asApiError(error);
      }
    }
    this._modelsSignature = '';
    this.emit('models');
  }

  /**
   * Approve, reject or cancel a request. On success the registry changed (views showing a
   * model reload); on failure the error is kept for the request's row. Resolves to whether
   * it worked.
   */
  async resolveRequest(
    request: ITransitionRequest,
    action: ActivityAction,
    comment = '',
    archiveExistingVersions = false
  ): Promise<boolean> {
    this.requestErrors.delete(request.id);
    try {
      await this.api.resolveTransitionRequest(action, request, comment, archiveExistingVersions);
    } catch (error) {
      this.requestErrors.set(request.id, asApiError(error).readable);
      this.emit('requests');
      return false;
    }
    const verb =
      action === 'APPROVE_TRANSITION_REQUEST'
        ? 'Approved'
        : action === 'REJECT_TRANSITION_REQUEST'
          ? 'Rejected'
          : 'Cancelled';
    this.notice = `${verb}: ${request.model_name} version ${request.version} → ${request.to_stage}`;
    this.registryChanged();
    await Promise.all([this.loadRequests(), this.tab === 'models' ? this.loadModels() : null]);
    return true;
  }

  /** Something changed the registry (here or in a model's page): reload what depends on it. */
  registryChanged(): void {
    this._modelsSignature = '';
    this.emit('registry');
    void this.loadRequests();
    if (this.tab === 'models') {
      void this.loadModels();
    }
  }

  /** The notebook path of a run's notebook, relative to the server root, or null. */
  notebookOf(row: IRunRow): { file: string; path: string | null } | null {
    const file = row.tags.get('labtrack.notebook.path') ?? row.tags.get('mlflow.source.name');
    if (!file || !file.endsWith('.ipynb')) {
      return null;
    }
    return { file, path: relativeTo(this.rootDir, file) };
  }

  // -- loading -------------------------------------------------------------------------------

  private experimentIds(): string[] {
    return this.experimentId ? [this.experimentId] : [];
  }

  private modelsFilterString(): string {
    return this.modelsFilter ? `name ILIKE '%${this.modelsFilter.replace(/'/g, "''")}%'` : '';
  }

  /**
   * server-info, and the root folder once the versions match; throws unless they do. Both
   * polls may ask at once: they share one handshake.
   */
  private connect(): Promise<void> {
    if (!this._connecting) {
      this._connecting = this.shakeHands().finally(() => (this._connecting = null));
    }
    return this._connecting;
  }

  private async shakeHands(): Promise<void> {
    let info: IServerInfo | null = null;
    let failure: ApiError | null = null;
    try {
      info = await this.api.serverInfo();
    } catch (error) {
      failure = asApiError(error);
    }
    let handshake = handshakeOf(info, failure);
    if (handshake.state === 'ok') {
      try {
        this.rootDir = await this.api.serverRoot();
      } catch (error) {
        failure = asApiError(error);
        handshake = handshakeOf(null, failure);
      }
    }
    this.setHandshake(handshake);
    if (handshake.state !== 'ok') {
      throw failure ?? new Error(handshake.message);
    }
  }

  private setHandshake(handshake: IHandshake): void {
    const same =
      handshake.state === this.handshake.state && handshake.message === this.handshake.message;
    this.handshake = handshake;
    if (!same) {
      this.emit('handshake');
    }
  }

  /** One poll tick: rejects (so the poll backs off) when the server fails. */
  private async tick(): Promise<void> {
    if (!this.connected) {
      await this.connect();
    }
    const loads: Promise<ApiError | null>[] = [this.loadRequests()];
    if (this.tab === 'runs') {
      loads.push(this.loadExperiments(), this.loadRuns());
    } else if (this.tab === 'models') {
      loads.push(this.loadModels());
    }
    const errors = (await Promise.all(loads)).filter((e): e is ApiError => e !== null);
    const serverError = errors.find(e => e.status === 0 || e.status >= 500 || e.status === 404);
    if (serverError) {
      if (serverError.status === 0 || serverError.errorCode === 'ENDPOINT_NOT_FOUND') {
        // Down, or the extension is gone: the next tick shakes hands again.
        this.setHandshake(handshakeOf(null, serverError));
      }
      throw serverError;
    }
  }

  private async tickRequests(): Promise<void> {
    if (!this.connected) {
      await this.connect();
    }
    const error = await this.loadRequests();
    if (error) {
      throw error;
    }
  }

  private async loadExperiments(): Promise<ApiError | null> {
    try {
      const experiments = await this.api.searchExperiments();
      const signature = JSON.stringify(experiments.map(e => [e.experiment_id, e.name]));
      if (signature !== this._experimentsSignature) {
        this._experimentsSignature = signature;
        this.experiments = experiments;
        this.emit('experiments');
      }
      return null;
    } catch (error) {
      return asApiError(error);
    }
  }

  /** The first pages of runs again (as many as are loaded), the notebook's with them. */
  async loadRuns(): Promise<ApiError | null> {
    const seq = ++this._runsSeq;
    this.runsLoading = true;
    let failure: ApiError | null = null;
    try {
      const page = await this.api.panelRuns({
        experimentIds: this.experimentIds(),
        filter: this.filter,
        notebookPath: this.notebookPath,
        maxResults: this._runsLimit
      });
      if (seq !== this._runsSeq) {
        return null;
      }
      const notebookRuns = page.notebook_runs ?? [];
      const signature = JSON.stringify([page, this.notebookPath]);
      this.runsLoading = false;
      const hadError = this.runsError !== null;
      this.runsError = null;
      if (signature === this._runsSignature && !hadError) {
        return null;
      }
      this._runsSignature = signature;
      const mine = new Set(notebookRuns.map(r => r.info.run_id));
      this.notebookFile = page.notebook_path ?? null;
      this.notebookRuns = notebookRuns.map(runRow);
      this.otherRuns = page.runs.filter(r => !mine.has(r.info.run_id)).map(runRow);
      this.runsToken = page.next_page_token;
      if (!this._columnsChosen) {
        this.columns = defaultColumns(this.availableColumns);
      }
    } catch (error) {
      if (seq !== this._runsSeq) {
        return null;
      }
      failure = asApiError(error);
      this.runsError = failure;
      this.runsLoading = false;
      this._runsSignature = '';
    }
    this.emit('runs');
    return failure;
  }

  async loadModels(): Promise<ApiError | null> {
    const seq = ++this._modelsSeq;
    this.modelsLoading = true;
    let failure: ApiError | null = null;
    try {
      const page = await this.api.searchRegisteredModels(
        this.modelsFilterString(),
        undefined,
        this._modelsLimit
      );
      if (seq !== this._modelsSeq) {
        return null;
      }
      this.modelsLoading = false;
      const signature = JSON.stringify(page);
      const hadError = this.modelsError !== null;
      this.modelsError = null;
      if (signature === this._modelsSignature && !hadError) {
        return null;
      }
      this._modelsSignature = signature;
      this.models = page.items;
      this.modelsToken = page.nextPageToken;
    } catch (error) {
      if (seq !== this._modelsSeq) {
        return null;
      }
      failure = asApiError(error);
      this.modelsError = failure;
      this.modelsLoading = false;
      this._modelsSignature = '';
    }
    this.emit('models');
    return failure;
  }

  async loadRequests(): Promise<ApiError | null> {
    const seq = ++this._requestsSeq;
    try {
      const requests = await this.api.listTransitionRequests();
      if (seq !== this._requestsSeq) {
        return null;
      }
      const signature = JSON.stringify(requests);
      const hadError = this.requestsError !== null;
      this.requestsError = null;
      if (signature !== this._requestsSignature || hadError) {
        this._requestsSignature = signature;
        this.requests = requests;
        const open = new Set(requests.map(r => r.id));
        for (const id of [...this.requestErrors.keys()]) {
          if (!open.has(id)) {
            this.requestErrors.delete(id);
          }
        }
        this.emit('requests');
      }
      return null;
    } catch (error) {
      if (seq !== this._requestsSeq) {
        return null;
      }
      this.requestsError = asApiError(error);
      this._requestsSignature = '';
      this.emit('requests');
      return this.requestsError;
    }
  }

  private emit(change: Change): void {
    if (!this._disposed) {
      this._changed.emit(change);
    }
  }

  private _changed = new Signal<this, Change>(this);
  private _disposed = false;
  private _visible = false;
  private _runsLimit: number;
  private _modelsLimit: number;
  private _runsSeq = 0;
  private _modelsSeq = 0;
  private _requestsSeq = 0;
  private _runsSignature = '';
  private _modelsSignature = '';
  private _requestsSignature = '';
  private _experimentsSignature = '';
  private _columnsChosen = false;
  private _connecting: Promise<void> | null = null;
}

/** Up to two metrics and one param, the first in key order. */
export function defaultColumns(available: IColumns): IColumns {
  return { metrics: available.metrics.slice(0, 2), params: available.params.slice(0, 1) };
}

/** `file` relative to `root` ("a/b.ipynb"), or null when it is not under it. */
export function relativeTo(root: string | null, file: string): string | null {
  if (!root) {
    return null;
  }
  const normalize = (p: string) => p.replace(/\\/g, '/');
  const base = normalize(root).replace(/\/+$/, '');
  const target = normalize(file);
  if (base === '') {
    return target.replace(/^\/+/, '');
  }
  return target.startsWith(base + '/') ? target.slice(base.length + 1) : null;
}

export function asApiError(error: unknown): ApiError {
  if (error instanceof ApiError) {
    return error;
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ApiError(-1, 'CLIENT_ERROR', message, '');
}

// -- registry rules, as the server applies them (services/permissions.py) -------------------

export function atLeast(level: PermissionLevel | null | undefined, needed: PermissionLevel): boolean {
  return !!level && PERMISSION_LEVELS.indexOf(level) >= PERMISSION_LEVELS.indexOf(needed);
}

/** Moving between two stages needs the higher of their levels (Production's is higher). */
export function canTransition(level: PermissionLevel | null | undefined, from: Stage, to: Stage): boolean {
  if (from === to) {
    return false;
  }
  const needed: PermissionLevel =
    from === 'Production' || to === 'Production'
      ? 'CAN_MANAGE_PRODUCTION_VERSIONS'
      : 'CAN_MANAGE_STAGING_VERSIONS';
  return atLeast(level, needed);
}

/** The stages a version in `from` may be moved to directly by someone at `level`. */
export function directTargets(level: PermissionLevel | null | undefined, from: Stage): Stage[] {
  return STAGES.filter(stage => canTransition(level, from, stage));
}

/** One line for an audit-trail entry: who did what (the time and comment are shown apart). */
export function activityText(activity: IActivity): string {
  const who = activity.user_id || 'someone';
  const v = activity.version ? `version ${activity.version}` : 'the model';
  const move =
    activity.from_stage && activity.to_stage
      ? ` from ${activity.from_stage} to ${activity.to_stage}`
      : activity.to_stage
        ? ` to ${activity.to_stage}`
        : '';
  switch (activity.activity_type) {
    case 'APPLIED_TRANSITION':
      return `${who} moved ${v}${move}`;
    case 'REQUESTED_TRANSITION':
      return `${who} requested moving ${v}${move}`;
    case 'APPROVED_REQUEST':
      return `${who} approved moving ${v}${move}`;
    case 'REJECTED_REQUEST':
      return `${who} rejected moving ${v}${move}`;
    case 'CANCELLED_REQUEST':
      return `${who} cancelled the request to move ${v}${move}`;
    case 'SYSTEM_TRANSITION':
      return `${v} was moved${move} (${activity.system_comment ?? 'by the system'})`;
    case 'NEW_COMMENT':
      return `${who} commented on ${v}`;
    case 'REGISTERED_MODEL_CREATED':
      return `${who} created the model`;
    case 'MODEL_VERSION_CREATED':
      return `${who} registered ${v}`;
    default: {
      const what = activity.activity_type.toLowerCase().replace(/_/g, ' ');
      return `${who}: ${activity.system_comment || what}`;
    }
  }
}

// The panel's only way to the server: every call goes through ServerConnection.makeRequest
// (Jupyter's token, XSRF cookie and base_url handled there) to `{base_url}labtrack/…`.
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import {
  ActivityAction,
  IActivity,
  IArtifactList,
  IComment,
  IExperiment,
  IMetricSeries,
  IModelVersion,
  IPanelRunsPage,
  IRegisteredModel,
  IRegisteredModelWithPermission,
  IRun,
  IServerInfo,
  ITransitionRequest,
  Stage,
  XAxis
} from './tokens';

/** Where the server extension mounts its REST API, under Jupyter's base_url. */
export const MOUNT = 'labtrack';
const MLFLOW = 'api/2.0/mlflow';
const LABTRACK = 'api/2.0/labtrack';
const ARTIFACTS = 'api/2.0/mlflow-artifacts/artifacts';

type Query = Record<string, string | number | boolean | (string | number)[] | undefined>;

/** A failed call: the HTTP status (0: no answer) and MLflow's error code and message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
    readonly url: string
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** A sentence for the user: what failed and what to do. */
  get readable(): string {
    switch (this.status) {
      case 0:
        return `The Jupyter server does not answer (${this.message}). Is it still running?`;
      case 401:
      case 403:
        return this.errorCode === 'PERMISSION_DENIED' && this.message
          ? `Not allowed: ${this.message}`
          : 'Not allowed: the Jupyter server refused the request (log in again?).';
      case 404:
        return this.errorCode === 'ENDPOINT_NOT_FOUND' || !this.errorCode
          ? 'The labtrack server extension is not installed or not enabled on this Jupyter ' +
              'server (' +
              this.url +
              ' answered 404).'
          : this.message;
      default:
        return this.message || `The server answered ${this.status}.`;
    }
  }
}

export interface IRequestOptions {
  method?: 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT';
  query?: Query;
  body?: unknown;
}

function queryString(query: Query | undefined): string {
  if (!query) {
    return '';
  }
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) {
      continue;
    }
    for (const item of Array.isArray(value) ? value : [value]) {
      params.append(key, String(item));
    }
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

async function errorOf(response: Response, url: string): Promise<ApiError> {
  let code = '';
  let message = '';
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text);
    code = typeof body.error_code === 'string' ? body.error_code : '';
    message = typeof body.message === 'string' ? body.message : '';
  } catch {
    // not JSON: an HTML error page (jupyter_server's 404 when the extension is missing)
  }
  if (response.status === 404 && !code) {
    code = 'ENDPOINT_NOT_FOUND';
  }
  return new ApiError(response.status, code, message || response.statusText, url);
}

export interface IPanelRunsQuery {
  experimentIds?: string[];
  filter?: string;
  notebookPath?: string | null;
  maxResults?: number;
  pageToken?: string;
}

export interface IPage<T> {
  items: T[];
  nextPageToken?: string;
}

export class LabtrackApi {
  readonly serverSettings: ServerConnection.ISettings;

  constructor(serverSettings?: ServerConnection.ISettings) {
    this.serverSettings = serverSettings ?? ServerConnection.makeSettings();
  }

  /** The absolute URL of an API path ("api/2.0/…"). */
  url(path: string, query?: Query): string {
    return URLExt.join(this.serverSettings.baseUrl, MOUNT, path) + queryString(query);
  }

  private async send(path: string, options: IRequestOptions): Promise<Response> {
    const method = options.method ?? 'GET';
    const url = this.url(path, options.query);
    const init: RequestInit = { method };
    if (options.body !== undefined) {
      init.body = JSON.stringify(options.body);
      init.headers = { 'Content-Type': 'application/json' };
    }
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this.serverSettings);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new ApiError(0, 'NETWORK_ERROR', reason, url);
    }
    if (!response.ok) {
      throw await errorOf(response, url);
    }
    return response;
  }

  /** One JSON call; rejects with an ApiError. */
  async request<T>(path: string, options: IRequestOptions = {}): Promise<T> {
    const response = await this.send(path, options);
    const text = await response.text();
    try {
      return (text ? JSON.parse(text) : {}) as T;
    } catch {
      throw new ApiError(
        response.status,
        'BAD_RESPONSE',
        `The server's answer is not JSON: ${text.slice(0, 120)}`,
        this.url(path)
      );
    }
  }

  // -- meta ---------------------------------------------------------------------------------

  serverInfo(): Promise<IServerInfo> {
    return this.request<IServerInfo>(`${LABTRACK}/server-info`);
  }

  async serverRoot(): Promise<string | null> {
    const data = await this.request<{ root_dir: string | null }>(`${LABTRACK}/panel/server-root`);
    return data.root_dir ?? null;
  }

  // -- tracking -----------------------------------------------------------------------------

  async searchExperiments(): Promise<IExperiment[]> {
    const experiments: IExperiment[] = [];
    let token: string | undefined;
    do {
      const data = await this.request<{ experiments?: IExperiment[]; next_page_token?: string }>(
        `${MLFLOW}/experiments/search`,
        {
          method: 'POST',
          body: { max_results: 1000, order_by: ['name ASC'], page_token: token }
        }
      );
      experiments.push(...(data.experiments ?? []));
      token = data.next_page_token;
    } while (token);
    return experiments;
  }

  panelRuns(query: IPanelRunsQuery): Promise<IPanelRunsPage> {
    return this.request<IPanelRunsPage>(`${LABTRACK}/panel/runs/search`, {
      method: 'POST',
      body: {
        experiment_ids: query.experimentIds ?? [],
        filter: query.filter || undefined,
        notebook_path: query.notebookPath || undefined,
        max_results: query.maxResults ?? 100,
        page_token: query.pageToken
      }
    });
  }

  async getRun(runId: string): Promise<IRun> {
    const data = await this.request<{ run: IRun }>(`${MLFLOW}/runs/get`, {
      query: { run_id: runId }
    });
    return data.run;
  }

  async getExperiment(experimentId: string): Promise<IExperiment> {
    const data = await this.request<{ experiment: IExperiment }>(`${MLFLOW}/experiments/get`, {
      query: { experiment_id: experimentId }
    });
    return data.experiment;
  }

  listArtifacts(runId: string, path?: string): Promise<IArtifactList> {
    return this.request<IArtifactList>(`${MLFLOW}/artifacts/list`, {
      query: { run_id: runId, path: path || undefined }
    });
  }

  /**
   * The URL path of a run's artifact file in the artifact proxy, or null when the run's
   * artifacts are not behind it (an `mlflow-artifacts:/` root URI).
   */
  static proxiedPath(rootUri: string, path: string): string | null {
    const match = /^mlflow-artifacts:\/*(.*)$/.exec(rootUri);
    if (!match) {
      return null;
    }
    const parts = [...match[1].split('/'), ...path.split('/')].filter(p => p);
    return parts.map(encodeURIComponent).join('/');
  }

  /** An artifact file's bytes, through the server's artifact proxy. */
  async artifact(rootUri: string, path: string): Promise<Blob> {
    const relative = LabtrackApi.proxiedPath(rootUri, path);
    if (relative === null) {
      throw new ApiError(
        400,
        'INVALID_PARAMETER_VALUE',
        `Artifacts stored at ${rootUri} are outside the server's artifact store and cannot be shown here.`,
        rootUri
      );
    }
    const response = await this.send(`${ARTIFACTS}/${relative}`, {});
    return response.blob();
  }

  async metricSeries(
    runIds: string[],
    metricKeys: string[] | null,
    xAxis: XAxis = 'step',
    maxPoints = 1000
  ): Promise<IMetricSeries[]> {
    const data = await this.request<{ series: IMetricSeries[] }>(
      `${LABTRACK}/metrics/get-history-downsampled`,
      {
        method: 'POST',
        body: {
          run_ids: runIds,
          metric_keys: metricKeys ?? undefined,
          x_axis: xAxis,
          max_points: maxPoints
        }
      }
    );
    return data.series;
  }

  // -- registry -----------------------------------------------------------------------------

  async searchRegisteredModels(
    filter = '',
    pageToken?: string,
    maxResults = 100
  ): Promise<IPage<IRegisteredModel>> {
    const data = await this.request<{
      registered_models?: IRegisteredModel[];
      next_page_token?: string;
    }>(`${MLFLOW}/registered-models/search`, {
      query: {
        filter: filter || undefined,
        max_results: maxResults,
        order_by: ['name ASC'],
        page_token: pageToken
      }
    });
    return { items: data.registered_models ?? [], nextPageToken: data.next_page_token };
  }

  /** A model with the caller's permission level on it. */
  async getRegisteredModel(name: string): Promise<IRegisteredModelWithPermission> {
    const data = await this.request<{
      registered_model_databricks: IRegisteredModelWithPermission;
    }>(`${MLFLOW}/databricks/registered-models/get`, { query: { name } });
    return data.registered_model_databricks;
  }

  async updateRegisteredModel(name: string, description: string): Promise<IRegisteredModel> {
    const data = await this.request<{ registered_model: IRegisteredModel }>(
      `${MLFLOW}/registered-models/update`,
      { method: 'PATCH', body: { name, description } }
    );
    return data.registered_model;
  }

  async searchModelVersions(name: string): Promise<IModelVersion[]> {
    const versions: IModelVersion[] = [];
    let token: string | undefined;
    const escaped = name.replace(/'/g, "''");
    do {
      const data = await this.request<{
        model_versions?: IModelVersion[];
        next_page_token?: string;
      }>(`${MLFLOW}/model-versions/search`, {
        query: {
          filter: `name = '${escaped}'`,
          max_results: 1000,
          order_by: ['version_number DESC'],
          page_token: token
        }
      });
      versions.push(...(data.model_versions ?? []));
      token = data.next_page_token;
    } while (token);
    return versions;
  }

  async listTransitionRequests(name?: string): Promise<ITransitionRequest[]> {
    const data = await this.request<{ requests?: ITransitionRequest[] }>(
      `${MLFLOW}/transition-requests/list`,
      { query: { name } }
    );
    return data.requests ?? [];
  }

  async createTransitionRequest(
    name: string,
    version: string,
    stage: Stage,
    comment?: string
  ): Promise<ITransitionRequest> {
    const data = await this.request<{ request: ITransitionRequest }>(
      `${MLFLOW}/transition-requests/create`,
      { method: 'POST', body: { name, version, stage, comment: comment || undefined } }
    );
    return data.request;
  }

  /** Approve, reject or cancel an open request; the answer is the audit entry. */
  async resolveTransitionRequest(
    action: ActivityAction,
    request: ITransitionRequest,
    comment?: string,
    archiveExistingVersions = false
  ): Promise<IActivity> {
    const body: Record<string, unknown> = {
      name: request.model_name,
      version: request.version,
      stage: request.to_stage,
      request_id: request.id,
      comment: comment || undefined
    };
    let path: string;
    let method: IRequestOptions['method'] = 'POST';
    switch (action) {
      case 'APPROVE_TRANSITION_REQUEST':
        path = 'approve';
        body.archive_existing_versions = archiveExistingVersions;
        break;
      case 'REJECT_TRANSITION_REQUEST':
        path = 'reject';
        break;
      case 'CANCEL_TRANSITION_REQUEST':
        path = 'delete';
        method = 'DELETE';
        body.creator = request.user_id;
        break;
      default:
        throw new Error(`Not a request action: ${action}`);
    }
    const data = await this.request<{ activity: IActivity }>(
      `${MLFLOW}/transition-requests/${path}`,
      { method, body }
    );
    return data.activity;
  }

  async transitionStage(
    name: string,
    version: string,
    stage: Stage,
    archiveExistingVersions = false,
    comment?: string
  ): Promise<IModelVersion> {
    const data = await this.request<{ model_version_databricks: IModelVersion }>(
      `${MLFLOW}/databricks/model-versions/transition-stage`,
      {
        method: 'POST',
        body: {
          name,
          version,
          stage,
          archive_existing_versions: archiveExistingVersions,
          comment: comment || undefined
        }
      }
    );
    return data.model_version_databricks;
  }

  async createComment(name: string, version: string, comment: string): Promise<IComment> {
    const data = await this.request<{ comment: IComment }>(`${MLFLOW}/comments/create`, {
      method: 'POST',
      body: { name, version, comment }
    });
    return data.comment;
  }

  async listActivities(
    name: string,
    pageToken?: string,
    maxResults = 100
  ): Promise<IPage<IActivity>> {
    const data = await this.request<{ activities?: IActivity[]; next_page_token?: string }>(
      `${LABTRACK}/activities/list`,
      { query: { name, max_results: maxResults, page_token: pageToken } }
    );
    return { items: data.activities ?? [], nextPageToken: data.next_page_token };
  }
}

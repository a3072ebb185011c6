// The API layer against an in-memory server behind ServerConnection: URLs under a non-root
// base_url, query strings and JSON bodies as the REST API reads them, and every failure
// turned into an ApiError with a sentence a user can act on.
jest.mock('@jupyterlab/services', () => jest.requireActual('./fakeServer').services);

import { ApiError, LabtrackApi } from '../api';
import { SERVER_INFO, run, transitionRequest, version } from './fixtures';
import { BASE_URL, server } from './fakeServer';

const LABTRACK = 'api/2.0/labtrack';
const MLFLOW = 'api/2.0/mlflow';

let api: LabtrackApi;

beforeEach(() => {
  server.reset();
  api = new LabtrackApi();
});

async function failure(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ApiError);
    return error as ApiError;
  }
  throw new Error('the call did not fail');
}

describe('URLs and requests', () => {
  it('mounts every call at {base_url}labtrack/', async () => {
    server.on('GET', `${LABTRACK}/server-info`, [200, SERVER_INFO]);
    expect(await api.serverInfo()).toEqual(SERVER_INFO);
    expect(server.requests[0].url).toBe(`${BASE_URL}labtrack/${LABTRACK}/server-info`);
    expect(api.url('api/2.0/x', { a: 'b c' })).toBe(`${BASE_URL}labtrack/api/2.0/x?a=b+c`);
  });

  it('repeats a query key for a list and leaves out undefined values', async () => {
    server.on('GET', `${MLFLOW}/registered-models/search`, [200, { registered_models: [] }]);
    await api.searchRegisteredModels('', undefined, 50);
    const query = server.requests[0].query;
    expect(query.getAll('order_by')).toEqual(['name ASC']);
    expect(query.get('max_results')).toBe('50');
    expect(query.has('filter')).toBe(false);
    expect(query.has('page_token')).toBe(false);
  });

  it('sends the panel runs search as JSON, naming the notebook as JupyterLab does', async () => {
    server.on('POST', `${LABTRACK}/panel/runs/search`, [200, { runs: [] }]);
    await api.panelRuns({
      experimentIds: ['3'],
      filter: 'metrics.loss < 1',
      notebookPath: 'work/train.ipynb',
      maxResults: 20
    });
    await api.panelRuns({});
    expect(server.requests.map(r => r.body)).toEqual([
      {
        experiment_ids: ['3'],
        filter: 'metrics.loss < 1',
        notebook_path: 'work/train.ipynb',
        max_results: 20
      },
      { experiment_ids: [], max_results: 100 }
    ]);
  });

  it('reads every page of experiments', async () => {
    server.on('POST', `${MLFLOW}/experiments/search`, request =>
      request.body.page_token
        ? [200, { experiments: [{ experiment_id: '2', name: 'b' }] }]
        : [200, { experiments: [{ experiment_id: '1', name: 'a' }], next_page_token: 't1' }]
    );
    const experiments = await api.searchExperiments();
    expect(experiments.map(e => e.experiment_id)).toEqual(['1', '2']);
    expect(server.requests.map(r => r.body.page_token)).toEqual([undefined, 't1']);
  });

  it("asks for a model's versions with the name quoted for the filter grammar", async () => {
    server.on('GET', `${MLFLOW}/model-versions/search`, [
      200,
      { model_versions: [version("ann's", '2', 'None'), version("ann's", '1', 'Production')] }
    ]);
    const versions = await api.searchModelVersions("ann's");
    expect(versions.map(v => v.version)).toEqual(['2', '1']);
    expect(server.requests[0].query.get('filter')).toBe("name = 'ann''s'");
    expect(server.requests[0].query.get('order_by')).toBe('version_number DESC');
  });

  it('asks for downsampled series of several runs in one call', async () => {
    server.on('POST', `${LABTRACK}/metrics/get-history-downsampled`, [200, { series: [] }]);
    await api.metricSeries(['a', 'b'], ['loss'], 'relative_time', 500);
    expect(server.requests[0].body).toEqual({
      run_ids: ['a', 'b'],
      metric_keys: ['loss'],
      x_axis: 'relative_time',
      max_points: 500
    });
  });
});

describe('transition requests', () => {
  const request = transitionRequest('7', 'demand', '3', 'Production');

  it('approves with the request id, the comment and the archive choice', async () => {
    server.on('POST', `${MLFLOW}/transition-requests/approve`, [
      200,
      { activity: { id: 'a1', activity_type: 'APPROVED_REQUEST' } }
    ]);
    const activity = await api.resolveTransitionRequest(
      'APPROVE_TRANSITION_REQUEST',
      request,
      'ship it',
      true
    );
    expect(activity.activity_type).toBe('APPROVED_REQUEST');
    expect(server.requests[0].body).toEqual({
      name: 'demand',
      version: '3',
      stage: 'Production',
      request_id: '7',
      comment: 'ship it',
      archive_existing_versions: true
    });
  });

  it('rejects with POST and cancels with DELETE naming the creator', async () => {
    server.on('POST', `${MLFLOW}/transition-requests/reject`, [200, { activity: {} }]);
    server.on('DELETE', `${MLFLOW}/transition-requests/delete`, [200, { activity: {} }]);
    await api.resolveTransitionRequest('REJECT_TRANSITION_REQUEST', request);
    await api.resolveTransitionRequest('CANCEL_TRANSITION_REQUEST', request, 'oops');
    expect(server.requests.map(r => [r.method, r.path])).toEqual([
      ['POST', `${MLFLOW}/transition-requests/reject`],
      ['DELETE', `${MLFLOW}/transition-requests/delete`]
    ]);
    expect(server.requests[0].body.comment).toBeUndefined();
    expect(server.requests[1].body).toMatchObject({ creator: 'ann', comment: 'oops' });
  });

  it('moves a version directly with a comment for the audit trail', async () => {
    server.on('POST', `${MLFLOW}/databricks/model-versions/transition-stage`, [
      200,
      { model_version_databricks: version('demand', '3', 'Staging') }
    ]);
    const moved = await api.transitionStage('demand', '3', 'Staging', false, 'try it');
    expect(moved.current_stage).toBe('Staging');
    expect(server.requests[0].body).toEqual({
      name: 'demand',
      version: '3',
      stage: 'Staging',
      archive_existing_versions: false,
      comment: 'try it'
    });
  });
});

describe('artifacts', () => {
  it("addresses a run's file through the artifact proxy", async () => {
    expect(LabtrackApi.proxiedPath('mlflow-artifacts:/1/abc/artifacts', 'notebook/cell.py')).toBe(
      '1/abc/artifacts/notebook/cell.py'
    );
    expect(LabtrackApi.proxiedPath('mlflow-artifacts:/1/abc/artifacts', 'a b#.txt')).toBe(
      '1/abc/artifacts/a%20b%23.txt'
    );
    expect(LabtrackApi.proxiedPath('file:///elsewhere/1/abc', 'x.txt')).toBeNull();

    server.on('GET', 'api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/a b#.txt', [
      200,
      'hello',
      'text/plain'
    ]);
    const blob = await api.artifact('mlflow-artifacts:/1/abc/artifacts', 'a b#.txt');
    expect(await blob.text()).toBe('hello');
  });

  it('says why artifacts outside the artifact store cannot be shown', async () => {
    const error = await failure(api.artifact('s3://bucket/1/abc', 'x.txt'));
    expect(error.readable).toContain("outside the server's artifact store");
    expect(server.requests).toEqual([]);
  });

  it('lists a folder of a run', async () => {
    server.on('GET', `${MLFLOW}/artifacts/list`, [
      200,
      { root_uri: 'mlflow-artifacts:/0/r/artifacts', files: [{ path: 'notebook', is_dir: true }] }
    ]);
    const listing = await api.listArtifacts('r', 'notebook');
    expect(listing.files[0].is_dir).toBe(true);
    expect(server.requests[0].query.get('path')).toBe('notebook');
  });
});

describe('errors', () => {
  it("keeps MLflow's error code and message", async () => {
    server.on('POST', `${MLFLOW}/transition-requests/approve`, [
      409,
      { error_code: 'RESOURCE_CONFLICT', message: 'The request was already approved.' }
    ]);
    const error = await failure(
      api.resolveTransitionRequest(
        'APPROVE_TRANSITION_REQUEST',
        transitionRequest('1', 'm', '1', 'Staging')
      )
    );
    expect([error.status, error.errorCode]).toEqual([409, 'RESOURCE_CONFLICT']);
    expect(error.readable).toBe('The request was already approved.');
  });

  it('explains a permission error with the server\'s reason', async () => {
    server.on('GET', `${MLFLOW}/transition-requests/list`, [
      403,
      {
        error_code: 'PERMISSION_DENIED',
        message: "User 'bob' has CAN_READ on registered model 'm'; approving needs CAN_MANAGE."
      }
    ]);
    const error = await failure(api.listTransitionRequests());
    expect(error.readable).toBe(
      "Not allowed: User 'bob' has CAN_READ on registered model 'm'; approving needs CAN_MANAGE."
    );
  });

  it('reads a 404 page without JSON as a missing server extension', async () => {
    const error = await failure(api.serverInfo());
    expect([error.status, error.errorCode]).toEqual([404, 'ENDPOINT_NOT_FOUND']);
    expect(error.readable).toContain('server extension is not installed or not enabled');
    expect(error.readable).toContain(`${BASE_URL}labtrack/${LABTRACK}/server-info`);
  });

  it('keeps the message of a 404 for a missing resource', async () => {
    server.on('GET', `${MLFLOW}/runs/get`, [
      404,
      { error_code: 'RESOURCE_DOES_NOT_EXIST', message: "Run 'x' not found." }
    ]);
    const error = await failure(api.getRun('x'));
    expect(error.readable).toBe("Run 'x' not found.");
  });

  it('turns a refused connection into status 0', async () => {
    server.down = true;
    const error = await failure(api.serverInfo());
    expect([error.status, error.errorCode]).toEqual([0, 'NETWORK_ERROR']);
    expect(error.readable).toBe(
      'The Jupyter server does not answer (Failed to fetch). Is it still running?'
    );
  });

  it('refuses an answer that is not JSON', async () => {
    server.on('GET', `${MLFLOW}/runs/get`, [200, '<html>login</html>', 'text/html']);
    const error = await failure(api.getRun('x'));
    expect(error.errorCode).toBe('BAD_RESPONSE');
  });

  it('returns the run of runs/get', async () => {
    server.on('GET', `${MLFLOW}/runs/get`, [200, { run: run('x', 'first', 1000) }]);
    expect((await api.getRun('x')).info.run_name).toBe('first');
  });
});

// The panel's model against an in-memory server behind ServerConnection: the handshake and
// its readable failures, runs with the active notebook's first, paging, columns, the
// registry's summary, approving requests, and the polls' back-off and standby.
jest.mock('@jupyterlab/services', () => jest.requireActual('./fakeServer').services);

import { ApiError, LabtrackApi } from '../api';
import {
  Change,
  PanelModel,
  activityText,
  atLeast,
  canTransition,
  directTargets,
  handshakeOf,
  modelSummary,
  relativeTo,
  toNumber
} from '../model';
import { IRun } from '../tokens';
import { SERVER_INFO, model, run, transitionRequest, version } from './fixtures';
import { server } from './fakeServer';

const LABTRACK = 'api/2.0/labtrack';
const MLFLOW = 'api/2.0/mlflow';
const ROOT = '/home/olivia/work';

let panel: PanelModel;
let changes: Change[];

function connectedServer(options: { runs?: IRun[]; notebookRuns?: IRun[] } = {}): void {
  server.on('GET', `${LABTRACK}/server-info`, [200, SERVER_INFO]);
  server.on('GET', `${LABTRACK}/panel/server-root`, [200, { root_dir: ROOT }]);
  server.on('POST', `${MLFLOW}/experiments/search`, [
    200,
    { experiments: [{ experiment_id: '0', name: 'Default' }, { experiment_id: '4', name: 'sweep' }] }
  ]);
  server.on('GET', `${MLFLOW}/transition-requests/list`, [200, { requests: [] }]);
  server.on('POST', `${LABTRACK}/panel/runs/search`, request => {
    const page: Record<string, unknown> = { runs: options.runs ?? [] };
    if (request.body.notebook_path) {
      page.notebook_path = `${ROOT}/${request.body.notebook_path}`;
      page.notebook_runs = options.notebookRuns ?? [];
    }
    return [200, page];
  });
}

/** Wait (a bounded number of timer turns) until `condition` holds. */
async function until(condition: () => boolean, turns = 200): Promise<void> {
  for (let i = 0; i < turns && !condition(); i++) {
    await new Promise(resolve => setTimeout(resolve, 5));
  }
  expect(condition()).toBe(true);
}

beforeEach(() => {
  server.reset();
  // Short intervals: a poll may leave its next tick's timer behind when disposed mid-tick,
  // and that must not keep jest waiting.
  panel = new PanelModel({
    api: new LabtrackApi(),
    auto: false,
    pageSize: 2,
    interval: 20,
    requestsInterval: 20,
    maxInterval: 40
  });
  changes = [];
  panel.changed.connect((_, change) => changes.push(change));
});

afterEach(() => panel.dispose());

describe('the version handshake', () => {
  it('accepts a labtrack server speaking the same API version', () => {
    expect(handshakeOf(SERVER_INFO, null)).toEqual({
      state: 'ok',
      message: '',
      info: SERVER_INFO
    });
  });

  it('names both versions when they do not match, and what to do', () => {
    const handshake = handshakeOf({ ...SERVER_INFO, version: '0.3.0', api_version: 2 }, null);
    expect(handshake.state).toBe('mismatch');
    expect(handshake.message).toBe(
      'The labtrack server extension (version 0.3.0, API 2) does not match this panel ' +
        '(API 1); the server is newer. Install one labtrack version for both (pip install -U ' +
        'labtrack in the environment that runs Jupyter), restart Jupyter and reload this page.'
    );
  });

  it('says the server extension is missing on a 404', () => {
    const error = new ApiError(404, 'ENDPOINT_NOT_FOUND', 'Not Found', 'http://h/labtrack/x');
    const handshake = handshakeOf(null, error);
    expect(handshake.state).toBe('missing');
    expect(handshake.message).toContain('server extension is not running');
    expect(handshake.message).toContain('jupyter server extension list');
  });

  it('tells an unreachable server from a refusal', () => {
    expect(handshakeOf(null, new ApiError(0, 'NETWORK_ERROR', 'Failed to fetch', '')).state).toBe(
      'unreachable'
    );
    const refused = handshakeOf(null, new ApiError(403, '', 'Forbidden', ''));
    expect(refused.state).toBe('error');
    expect(refused.message).toContain('Not allowed');
  });

  it('does not mistake another service for labtrack', () => {
    const handshake = handshakeOf({ ...SERVER_INFO, name: 'other' }, null);
    expect(handshake.state).toBe('missing');
  });

  it('reads nothing else while the server extension is missing', async () => {
    await expect(panel.refresh()).rejects.toBeInstanceOf(ApiError);
    expect(panel.handshake.state).toBe('missing');
    expect(changes).toEqual(['handshake']);
    expect(server.requests.map(r => r.path)).toEqual([`${LABTRACK}/server-info`]);
  });

  it('stops at a version mismatch', async () => {
    server.on('GET', `${LABTRACK}/server-info`, [200, { ...SERVER_INFO, api_version: 9 }]);
    await expect(panel.refresh()).rejects.toThrow('does not match this panel');
    expect(panel.handshake.state).toBe('mismatch');
    expect(server.requests).toHaveLength(1);
  });
});

describe('runs', () => {
  it('loads experiments, runs and requests once connected', async () => {
    connectedServer({ runs: [run('b', 'second', 2000), run('a', 'first', 1000)] });
    await panel.refresh();
    expect(panel.handshake.state).toBe('ok');
    expect(panel.rootDir).toBe(ROOT);
    expect(panel.experiments.map(e => e.name)).toEqual(['Default', 'sweep']);
    expect(panel.runs.map(r => r.run.info.run_name)).toEqual(['second', 'first']);
    expect(changes).toEqual(expect.arrayContaining(['handshake', 'experiments', 'runs']));
  });

  it("lists the active notebook's runs first, and each run once", async () => {
    const mine = run('m', 'mine', 1000, { tags: { 'labtrack.notebook.path': `${ROOT}/nb.ipynb` } });
    connectedServer({ runs: [run('o', 'other', 3000), mine], notebookRuns: [mine] });
    await panel.refresh();
    await panel.setNotebookPath('nb.ipynb');
    expect(server.called('POST', `${LABTRACK}/panel/runs/search`).pop()!.body).toMatchObject({
      notebook_path: 'nb.ipynb'
    });
    expect(panel.notebookFile).toBe(`${ROOT}/nb.ipynb`);
    expect(panel.notebookRuns.map(r => r.run.info.run_id)).toEqual(['m']);
    expect(panel.otherRuns.map(r => r.run.info.run_id)).toEqual(['o']);
    expect(panel.runs.map(r => r.run.info.run_id)).toEqual(['m', 'o']);
    expect(panel.notebookOf(panel.notebookRuns[0])).toEqual({
      file: `${ROOT}/nb.ipynb`,
      path: 'nb.ipynb'
    });
  });

  it('narrows to one experiment and a filter', async () => {
    connectedServer();
    await panel.refresh();
    await panel.setExperiment('4');
    await panel.setFilter('  metrics.loss < 1 ');
    const bodies = server.called('POST', `${LABTRACK}/panel/runs/search`).map(r => r.body);
    expect(bodies.pop()).toMatchObject({ experiment_ids: ['4'], filter: 'metrics.loss < 1' });
    expect(panel.filter).toBe('metrics.loss < 1');
  });

  it('shows a bad filter in place without backing off', async () => {
    connectedServer();
    await panel.refresh();
    server.on('POST', `${LABTRACK}/panel/runs/search`, [
      400,
      { error_code: 'INVALID_PARAMETER_VALUE', message: "Invalid filter string 'x': …" }
    ]);
    await panel.setFilter('x');
    expect(panel.runsError?.readable).toBe("Invalid filter string 'x': …");
    await expect(panel.refresh()).resolves.toBeUndefined();
    expect(panel.handshake.state).toBe('ok');
  });

  it('pages: more runs are appended, and a refresh reads as many again', async () => {
    connectedServer();
    const all = [run('c', 'c', 3000), run('b', 'b', 2000), run('a', 'a', 1000)];
    server.on('POST', `${LABTRACK}/panel/runs/search`, request => {
      const start = request.body.page_token ? Number(request.body.page_token) : 0;
      const end = start + request.body.max_results;
      const page: Record<string, unknown> = { runs: all.slice(start, end) };
      if (end < all.length) {
        page.next_page_token = String(end);
      }
      return [200, page];
    });
    await panel.refresh();
    expect(panel.runs.map(r => r.run.info.run_id)).toEqual(['c', 'b']);
    expect(panel.runsToken).toBe('2');
    await panel.loadMoreRuns();
    expect(panel.runs.map(r => r.run.info.run_id)).toEqual(['c', 'b', 'a']);
    expect(panel.runsToken).toBeUndefined();
    await panel.refresh();
    const last = server.called('POST', `${LABTRACK}/panel/runs/search`).pop()!;
    expect(last.body.max_results).toBe(4);
    expect(panel.runs).toHaveLength(3);
  });

  it('signals runs only when they changed', async () => {
    connectedServer({ runs: [run('a', 'a', 1000)] });
    await panel.refresh();
    changes = [];
    await panel.refresh();
    expect(changes).not.toContain('runs');
  });

  it('chooses two metrics and a param as columns until the user picks', async () => {
    connectedServer({
      runs: [
        run('a', 'a', 1000, { metrics: { rmse: 2, loss: 'NaN', acc: 1 }, params: { lr: '0.1' } })
      ]
    });
    await panel.refresh();
    expect(panel.availableColumns).toEqual({ metrics: ['acc', 'loss', 'rmse'], params: ['lr'] });
    expect(panel.columns).toEqual({ metrics: ['acc', 'loss'], params: ['lr'] });
    expect(Number.isNaN(panel.runs[0].metrics.get('loss'))).toBe(true);
    panel.setColumns({ metrics: ['rmse'], params: [] });
    await panel.setFilter('metrics.rmse > 0');
    expect(panel.columns).toEqual({ metrics: ['rmse'], params: [] });
  });

  it('keeps a selection of runs for comparing', () => {
    panel.toggleSelected('a');
    panel.toggleSelected('b');
    panel.toggleSelected('a');
    expect([...panel.selection]).toEqual(['b']);
    panel.clearSelection();
    expect(panel.selection.size).toBe(0);
    expect(changes).toEqual(['selection', 'selection', 'selection', 'selection']);
  });

  it('keeps what it showed when the server goes down, and shakes hands again after', async () => {
    connectedServer({ runs: [run('a', 'a', 1000)] });
    await panel.refresh();
    server.down = true;
    await expect(panel.refresh()).rejects.toBeInstanceOf(ApiError);
    expect(panel.handshake.state).toBe('unreachable');
    expect(panel.handshake.message).toContain('does not answer');
    expect(panel.runs).toHaveLength(1);
    expect(panel.runsError?.status).toBe(0);
    server.down = false;
    server.requests = [];
    await panel.refresh();
    expect(panel.handshake.state).toBe('ok');
    expect(panel.runsError).toBeNull();
    expect(server.requests[0].path).toBe(`${LABTRACK}/server-info`);
  });
});

describe('the registry', () => {
  it("summarises a model: newest version, newest Staging and Production, aliases", () => {
    const summary = modelSummary(
      model(
        'demand',
        [version('demand', '9', 'None'), version('demand', '4', 'Production'), version('demand', '7', 'Staging')],
        { champion: '4', challenger: '7' }
      )
    );
    expect(summary).toEqual({
      latest: '9',
      staging: '7',
      production: '4',
      aliases: ['challenger→v7', 'champion→v4']
    });
    expect(modelSummary(model('empty', []))).toEqual({
      latest: '',
      staging: '',
      production: '',
      aliases: []
    });
  });

  it('loads models on the Models tab, filtered by name', async () => {
    connectedServer();
    server.on('GET', `${MLFLOW}/registered-models/search`, [
      200,
      { registered_models: [model('demand', [])], next_page_token: 'p2' }
    ]);
    await panel.refresh();
    panel.setTab('models');
    await panel.refresh();
    expect(panel.models.map(m => m.name)).toEqual(['demand']);
    expect(panel.modelsToken).toBe('p2');
    await panel.setModelsFilter("ann's");
    const last = server.called('GET', `${MLFLOW}/registered-models/search`).pop()!;
    expect(last.query.get('filter')).toBe("name ILIKE '%ann''s%'");
  });

  it('counts pending requests and approves one, reloading what depends on it', async () => {
    connectedServer();
    const open = transitionRequest('7', 'demand', '3', 'Production');
    let pending = [open];
    server.on('GET', `${MLFLOW}/transition-requests/list`, () => [200, { requests: pending }]);
    server.on('POST', `${MLFLOW}/transition-requests/approve`, () => {
      pending = [];
      return [200, { activity: { id: 'a', activity_type: 'APPROVED_REQUEST' } }];
    });
    await panel.refresh();
    expect(panel.pendingCount).toBe(1);
    changes = [];
    const ok = await panel.resolveRequest(open, 'APPROVE_TRANSITION_REQUEST', 'ship it', true);
    expect(ok).toBe(true);
    expect(server.called('POST', `${MLFLOW}/transition-requests/approve`)[0].body).toMatchObject({
      request_id: '7',
      comment: 'ship it',
      archive_existing_versions: true
    });
    expect(panel.pendingCount).toBe(0);
    expect(panel.notice).toBe('Approved: demand version 3 → Production');
    expect(changes).toEqual(expect.arrayContaining(['registry', 'requests']));
  });

  it("keeps a refused action's reason next to its request", async () => {
    connectedServer();
    const open = transitionRequest('7', 'demand', '3', 'Production');
    server.on('GET', `${MLFLOW}/transition-requests/list`, [200, { requests: [open] }]);
    server.on('POST', `${MLFLOW}/transition-requests/reject`, [
      403,
      { error_code: 'PERMISSION_DENIED', message: 'rejecting needs CAN_MANAGE_PRODUCTION_VERSIONS.' }
    ]);
    await panel.refresh();
    expect(await panel.resolveRequest(open, 'REJECT_TRANSITION_REQUEST')).toBe(false);
    expect(panel.requestErrors.get('7')).toBe(
      'Not allowed: rejecting needs CAN_MANAGE_PRODUCTION_VERSIONS.'
    );
    expect(panel.pendingCount).toBe(1);
  });

  it('shows a failing request list in place', async () => {
    connectedServer();
    server.on('GET', `${MLFLOW}/transition-requests/list`, [
      500,
      { error_code: 'INTERNAL_ERROR', message: 'Internal server error; see the server log.' }
    ]);
    await expect(panel.refresh()).rejects.toBeInstanceOf(ApiError);
    expect(panel.requestsError?.readable).toBe('Internal server error; see the server log.');
  });
});

describe('registry rules, as the server applies them', () => {
  it('orders permission levels', () => {
    expect(atLeast('CAN_MANAGE', 'CAN_EDIT')).toBe(true);
    expect(atLeast('CAN_EDIT', 'CAN_EDIT')).toBe(true);
    expect(atLeast('CAN_READ', 'CAN_EDIT')).toBe(false);
    expect(atLeast(null, 'CAN_READ')).toBe(false);
  });

  it('needs the Production level for any move touching Production', () => {
    const staging = 'CAN_MANAGE_STAGING_VERSIONS';
    expect(canTransition(staging, 'None', 'Staging')).toBe(true);
    expect(canTransition(staging, 'Staging', 'Archived')).toBe(true);
    expect(canTransition(staging, 'Staging', 'Production')).toBe(false);
    expect(canTransition(staging, 'Production', 'Archived')).toBe(false);
    expect(canTransition('CAN_MANAGE_PRODUCTION_VERSIONS', 'Staging', 'Production')).toBe(true);
    expect(canTransition('CAN_MANAGE', 'Staging', 'Staging')).toBe(false);
    expect(directTargets(staging, 'None')).toEqual(['Staging', 'Archived']);
    expect(directTargets('CAN_EDIT', 'None')).toEqual([]);
  });

  it('tells the history in sentences', () => {
    const base = { id: '1', model_name: 'm', user_id: 'olivia', creation_timestamp: 1, last_updated_timestamp: 1 };
    expect(
      activityText({ ...base, activity_type: 'APPROVED_REQUEST', version: '3', from_stage: 'None', to_stage: 'Production' })
    ).toBe('olivia approved moving version 3 from None to Production');
    expect(activityText({ ...base, activity_type: 'NEW_COMMENT', version: '2' })).toBe(
      'olivia commented on version 2'
    );
    expect(
      activityText({ ...base, activity_type: 'ALIAS_SET', version: '1', system_comment: "Alias 'champion' now points to version 1." })
    ).toBe("olivia: Alias 'champion' now points to version 1.");
    expect(activityText({ ...base, activity_type: 'REGISTERED_MODEL_CREATED' })).toBe(
      'olivia created the model'
    );
  });
});

describe('polling', () => {
  it('backs off while failing and stands by while the panel is hidden', () => {
    const defaults = new PanelModel({ api: new LabtrackApi(), auto: false });
    expect(defaults.poll.frequency).toMatchObject({ interval: 5000, backoff: true, max: 300000 });
    expect(defaults.requestsPoll.frequency).toMatchObject({ interval: 60000, backoff: true });
    defaults.dispose();
    const standby = panel.poll.standby as () => boolean | string;
    expect(standby()).toBe(true);
    panel.setVisible(true);
    expect(standby()).toBe('when-hidden');
    panel.setVisible(false);
    expect(standby()).toBe(true);
    expect(panel.requestsPoll.standby).toBe('when-hidden');
  });

  it('refreshes as soon as the panel is shown', async () => {
    connectedServer({ runs: [run('a', 'a', 1000)] });
    panel.setVisible(true);
    await until(() => panel.runs.length === 1);
    expect(panel.handshake.state).toBe('ok');
  });

  it('checks the pending requests for the badge while the panel is hidden', async () => {
    connectedServer();
    server.on('GET', `${MLFLOW}/transition-requests/list`, [
      200,
      { requests: [transitionRequest('1', 'm', '1', 'Staging')] }
    ]);
    await panel.requestsPoll.refresh();
    await until(() => panel.pendingCount === 1);
    expect(server.called('POST', `${LABTRACK}/panel/runs/search`)).toEqual([]);
  });
});

describe('helpers', () => {
  it('reads wire numbers', () => {
    expect(toNumber(1.5)).toBe(1.5);
    expect(toNumber('Infinity')).toBe(Infinity);
    expect(toNumber('-Infinity')).toBe(-Infinity);
    expect(Number.isNaN(toNumber('NaN'))).toBe(true);
  });

  it('names a notebook relative to the server root, or not at all', () => {
    expect(relativeTo('/home/a', '/home/a/x/y.ipynb')).toBe('x/y.ipynb');
    expect(relativeTo('/home/a/', '/home/a/y.ipynb')).toBe('y.ipynb');
    expect(relativeTo('/home/a', '/home/ab/y.ipynb')).toBeNull();
    expect(relativeTo('C:\\work', 'C:\\work\\nb.ipynb')).toBe('nb.ipynb');
    expect(relativeTo('/', '/srv/nb.ipynb')).toBe('srv/nb.ipynb');
    expect(relativeTo(null, '/srv/nb.ipynb')).toBeNull();
  });
});

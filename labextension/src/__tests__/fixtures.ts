// JSON as the server writes it (the entities' to_dict() through the REST wire format).
import {
  IModelVersion,
  IRegisteredModel,
  IRun,
  IServerInfo,
  ITransitionRequest,
  Stage
} from '../tokens';

export const SERVER_INFO: IServerInfo = {
  name: 'labtrack',
  version: '0.1.0',
  api_version: 1,
  user: 'olivia',
  artifact_root: 'mlflow-artifacts:/'
};

export function run(
  id: string,
  name: string,
  start: number,
  options: {
    metrics?: Record<string, number | 'NaN'>;
    params?: Record<string, string>;
    tags?: Record<string, string>;
    status?: IRun['info']['status'];
    experimentId?: string;
  } = {}
): IRun {
  return {
    info: {
      run_id: id,
      run_uuid: id,
      run_name: name,
      experiment_id: options.experimentId ?? '0',
      user_id: 'olivia',
      status: options.status ?? 'FINISHED',
      start_time: start,
      end_time: start + 61000,
      artifact_uri: `mlflow-artifacts:/0/${id}/artifacts`,
      lifecycle_stage: 'active'
    },
    data: {
      metrics: Object.entries(options.metrics ?? {}).map(([key, value]) => ({
        key,
        value,
        timestamp: start,
        step: 3
      })),
      params: Object.entries(options.params ?? {}).map(([key, value]) => ({ key, value })),
      tags: Object.entries(options.tags ?? {}).map(([key, value]) => ({ key, value }))
    },
    inputs: {},
    outputs: {}
  };
}

export function version(name: string, number: string, stage: Stage): IModelVersion {
  return {
    name,
    version: number,
    creation_timestamp: 1700000000000 + Number(number),
    last_updated_timestamp: 1700000000000 + Number(number),
    user_id: 'ann',
    current_stage: stage,
    description: '',
    source: `mlflow-artifacts:/0/r${number}/artifacts/model`,
    status: 'READY',
    tags: [],
    aliases: [],
    run_id: `r${number}`
  };
}

export function model(
  name: string,
  latest: IModelVersion[],
  aliases: Record<string, string> = {}
): IRegisteredModel {
  return {
    name,
    id: `id-${name}`,
    creation_timestamp: 1700000000000,
    last_updated_timestamp: 1700000000000,
    user_id: 'ann',
    description: '',
    latest_versions: latest,
    tags: [],
    aliases: Object.entries(aliases).map(([alias, v]) => ({ alias, version: v }))
  };
}

export function transitionRequest(
  id: string,
  name: string,
  number: string,
  stage: Stage,
  actions: ITransitionRequest['available_actions'] = [
    'APPROVE_TRANSITION_REQUEST',
    'REJECT_TRANSITION_REQUEST'
  ]
): ITransitionRequest {
  return {
    id,
    model_name: name,
    version: number,
    to_stage: stage,
    user_id: 'ann',
    creation_timestamp: 1700000001000,
    status: 'OPEN',
    available_actions: actions,
    comment: 'beats v1'
  };
}

// The JSON the server sends, field for field as the entities' to_dict() (and the REST wire
// format: MLflow's names, non-finite numbers as "NaN" / "Infinity" strings) write it.

/** Version of labtrack's REST additions this panel speaks (server-info's api_version). */
export const API_VERSION = 1;

export interface IServerInfo {
  name: string;
  version: string;
  api_version: number;
  user: string;
  artifact_root: string;
}

export interface IKeyValue {
  key: string;
  value: string;
}

export type WireNumber = number | 'NaN' | 'Infinity' | '-Infinity';

export interface IExperiment {
  experiment_id: string;
  name: string;
  artifact_location: string;
  lifecycle_stage: string;
  creation_time?: number;
  last_update_time?: number;
  tags: IKeyValue[];
}

export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';

export interface IRunInfo {
  run_id: string;
  run_uuid: string;
  run_name: string;
  experiment_id: string;
  user_id: string;
  status: RunStatus;
  start_time?: number;
  end_time?: number;
  artifact_uri: string;
  lifecycle_stage: string;
}

export interface IMetric {
  key: string;
  value: WireNumber;
  timestamp: number;
  step: number;
}

export interface IRunData {
  metrics: IMetric[];
  params: IKeyValue[];
  tags: IKeyValue[];
}

export interface IRun {
  info: IRunInfo;
  data: IRunData;
  inputs?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
}

export interface IRunsPage {
  runs: IRun[];
  next_page_token?: string;
}

/** panel/runs/search: a page of runs, and on the first page the active notebook's runs. */
export interface IPanelRunsPage extends IRunsPage {
  notebook_path?: string;
  notebook_runs?: IRun[];
}

export interface IFileInfo {
  path: string;
  is_dir: boolean;
  file_size?: number;
}

export interface IArtifactList {
  root_uri: string;
  files: IFileInfo[];
}

export type XAxis = 'step' | 'time' | 'relative_time';

export interface IMetricSeries {
  run_id: string;
  key: string;
  x_axis: XAxis;
  x: number[];
  steps: number[];
  timestamps: number[];
  values: WireNumber[];
  total_points: number;
  resolution: number;
}

export type Stage = 'None' | 'Staging' | 'Production' | 'Archived';

export const STAGES: Stage[] = ['None', 'Staging', 'Production', 'Archived'];

export interface IModelVersion {
  name: string;
  version: string;
  creation_timestamp: number;
  last_updated_timestamp: number;
  user_id: string;
  current_stage: Stage;
  description: string;
  source: string;
  status: string;
  tags: IKeyValue[];
  aliases: string[];
  run_id?: string;
  run_link?: string;
  status_message?: string;
  model_id?: string;
}

export interface IAlias {
  alias: string;
  version: string;
}

export interface IRegisteredModel {
  name: string;
  id: string;
  creation_timestamp: number;
  last_updated_timestamp: number;
  user_id: string;
  description: string;
  latest_versions: IModelVersion[];
  tags: IKeyValue[];
  aliases: IAlias[];
}

export type PermissionLevel =
  | 'CAN_READ'
  | 'CAN_EDIT'
  | 'CAN_MANAGE_STAGING_VERSIONS'
  | 'CAN_MANAGE_PRODUCTION_VERSIONS'
  | 'CAN_MANAGE';

export const PERMISSION_LEVELS: PermissionLevel[] = [
  'CAN_READ',
  'CAN_EDIT',
  'CAN_MANAGE_STAGING_VERSIONS',
  'CAN_MANAGE_PRODUCTION_VERSIONS',
  'CAN_MANAGE'
];

/** registered-models/get of the Databricks API: the model and the caller's level. */
export interface IRegisteredModelWithPermission extends IRegisteredModel {
  permission_level: PermissionLevel | null;
}

export type ActivityAction =
  | 'APPROVE_TRANSITION_REQUEST'
  | 'REJECT_TRANSITION_REQUEST'
  | 'CANCEL_TRANSITION_REQUEST'
  | 'EDIT_COMMENT'
  | 'DELETE_COMMENT';

export interface ITransitionRequest {
  id: string;
  model_name: string;
  version: string;
  to_stage: Stage;
  user_id: string;
  creation_timestamp: number;
  status: 'OPEN' | 'APPROVED' | 'REJECTED' | 'CANCELLED';
  available_actions: ActivityAction[];
  comment?: string;
  resolved_by?: string;
  resolved_timestamp?: number;
}

export interface IActivity {
  id: string;
  model_name: string;
  activity_type: string;
  user_id: string;
  creation_timestamp: number;
  last_updated_timestamp: number;
  version?: string;
  from_stage?: string;
  to_stage?: string;
  comment?: string;
  system_comment?: string;
  available_actions?: ActivityAction[];
}

export interface IComment {
  id: string;
  model_name: string;
  version: string;
  user_id: string;
  comment: string;
  creation_timestamp: number;
  last_updated_timestamp: number;
  available_actions: ActivityAction[];
}

/** MLflow's error body. */
export interface IErrorBody {
  error_code: string;
  message: string;
}

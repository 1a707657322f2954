// Runs: each fit is a run, executed by a detached worker and recorded in the run store under
// $CLIPFIT_HOME, so the caller can leave and come back with getRun(name).

export {
  createExperiment,
  deleteExperiment,
  deleteRun,
  getRun,
  inProcessRun,
  listExperiments,
  listRuns,
  resumeRun,
  startRun,
} from './launch.js';
export type { StartRunOptions, StoreOption } from './launch.js';
export { Run } from './run.js';
export type { CancelOptions, RunStatusInfo, WaitOptions } from './run.js';
export { FINAL_STATUSES, RunStore, isFinal, runsHome } from './store.js';
export type { EpochMetrics, ExperimentInfo, RunProgress, RunRecord, RunStatus } from './store.js';
export { formatLogEntry } from './logs.js';
export type { FollowOptions, LogEntry } from './logs.js';
export { generateName } from './names.js';

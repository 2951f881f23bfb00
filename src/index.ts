/**
 * pg-node-worker: PostgreSQL background workers written in TypeScript.
 *
 * Inside the server, the runtime provides this module to deployed bundles,
 * so `PgError` thrown by `ctx.sql` is the class exported here.
 */
export { defineWorker, DEFINITION_BRAND } from './define';
export { PgError } from './errors';
export type { PgErrorFields } from './errors';
export type {
  BufferSnapshot,
  Buffers,
  BufferStats,
  CallMeta,
  EnqueueOptions,
  AsyncJobHandler,
  Job,
  JobHandler,
  JobsOptions,
  SyncJobHandler,
  LaunchOptions,
  SenderMeta,
  ForkName,
  Message,
  MissedSlots,
  SleepResult,
  Logger,
  PrewarmOptions,
  RelationRef,
  Result,
  Row,
  ScheduleOptions,
  ScheduleRun,
  SyncScheduleFn,
  AsyncScheduleFn,
  Sql,
  SqlFragment,
  StartTime,
  Transaction,
  WorkerContext,
  WorkerDefinition,
  WorkerHandle,
  WorkerInfo,
  WorkerMemory,
} from './types';

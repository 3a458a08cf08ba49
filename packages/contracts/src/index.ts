export {
  ACTION_LIST,
  ACTIONS,
  ActionName,
  TOOLS,
  ToolName,
  CreateFileAction,
  ExecuteCommandAction,
  ReadFileAction,
  ListFilesAction,
  DaytonaAction,
  FileEntry,
  CreateFileResult,
  ExecuteCommandResult,
  ReadFileResult,
  ListFilesResult,
  ActionResult,
  actionOf,
  actionsOfTool,
  isActionName,
  isSandboxAction,
  toolOf,
  summarizeAction,
  describeActionResult,
  exitCodeOf,
} from './actions.js';
export type { ActionDefinition, ActionEffects, AnyAction, RunsIn, SandboxAction, WorkerAction } from './actions.js';
export {
  WebSearchAction,
  WebSearchHit,
  WebSearchResult,
  WebFetchAction,
  WebFetchResult,
  untrustedBlock,
} from './web-actions.js';
export { ToolCall, StepOutcome } from './tools.js';
export {
  TASK_ID_PATTERN,
  TaskId,
  TaskMetadata,
  TaskRequest,
  TASK_STATUSES,
  TaskStatus,
  FINAL_STATUSES,
  Phase,
  TaskProgress,
  StepStatus,
  StepView,
  ResultFile,
  TaskResult,
  TaskErrorCode,
  TaskError,
  TaskView,
  TaskAccepted,
} from './task.js';
export { TaskEvent } from './events.js';
export {
  WEBHOOK_EVENTS,
  WebhookEvent,
  TaskWebhook,
  WebhookOutcome,
  WebhookAttempt,
  WebhookDelivery,
  WebhookDeliveries,
} from './webhooks.js';
export { WebhookPayload } from './webhook-payload.js';
export type { TaskEventType, StoredTaskEvent } from './events.js';
export { ApiErrorBody } from './errors.js';

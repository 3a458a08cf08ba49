export {
  ACTIONS,
  ActionName,
  CreateFileAction,
  ExecuteCommandAction,
  ReadFileAction,
  ListFilesAction,
  DaytonaAction,
  ToolCall,
  FileEntry,
  CreateFileResult,
  ExecuteCommandResult,
  ReadFileResult,
  ListFilesResult,
  ActionResult,
  StepOutcome,
} from './tools.js';
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
export type { TaskEventType, StoredTaskEvent } from './events.js';
export { ApiErrorBody } from './errors.js';

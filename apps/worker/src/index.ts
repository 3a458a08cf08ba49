export { startWorker } from './runtime.js';
export type { WorkerRuntime, WorkerRuntimeOptions } from './runtime.js';

export { createServer, createApi, shutdownServer } from './server.js';
export type { Api } from './server.js';
export type { ApiDeps } from './deps.js';
export { configureHttpServer } from './http-server.js';

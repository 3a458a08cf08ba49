/**
 * TEST DATA — not compiled into dist. The actions of the system prompt's sandbox examples, in
 * order, as the prompt tests hold them (with web tools the web examples follow them).
 */
export const SANDBOX_EXAMPLE_ACTIONS = ['list-files', 'create-file', 'execute-command', 'read-file', 'list-files'];

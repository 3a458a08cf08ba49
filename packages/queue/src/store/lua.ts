import type { Redis } from '../connection.js';

/**
 * `has_word(list, word)`: whether a space-separated list holds `word`. Scripts take a set of
 * statuses this way, as one ARGV, since a script's arguments are flat strings.
 */
export const WORDS_LUA = `local function has_word(list, word)
  for w in string.gmatch(list, '%S+') do
    if w == word then return true end
  end
  return false
end
`;

/** Every script made, in the order made: all module-level constants, so all made at import. */
const SCRIPTS: LuaScript<unknown>[] = [];

/**
 * A Lua script run as a named command: ioredis defines it on a connection the first time that
 * connection runs it (then EVALSHA, falling back to EVAL where Redis lost the script), and the
 * key count always matches the keys given. A connection that auto-pipelines has every script
 * defined when it is made (`defineLuaScripts`).
 */
export class LuaScript<Reply> {
  constructor(
    readonly name: string,
    readonly lua: string,
  ) {
    SCRIPTS.push(this);
  }

  run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<Reply> {
    if (!(this.name in redis)) {
      // A batch waiting to go out was made with the commands its connection had then; one
      // defined now would be missing from it.
      if (redis.options.enableAutoPipelining)
        throw new Error(`the Lua command ${this.name} was made after its auto-pipelining connection`);
      redis.defineCommand(this.name, { lua: this.lua });
    }
    const command = (redis as unknown as Record<string, (...a: (string | number)[]) => Promise<Reply>>)[this.name];
    if (!command) throw new Error(`the Lua command ${this.name} is not defined on this connection`);
    return command.call(redis, keys.length, ...keys, ...args);
  }
}

/**
 * Defines every script made so far on `redis`. A connection that auto-pipelines needs them
 * before its first call: ioredis gives each batch the commands its connection has when the
 * batch begins.
 */
export function defineLuaScripts(redis: Redis): void {
  for (const script of SCRIPTS) if (!(script.name in redis)) redis.defineCommand(script.name, { lua: script.lua });
}

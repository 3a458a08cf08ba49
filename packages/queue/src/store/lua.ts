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

/**
 * A Lua script run as a named command: ioredis defines it on a connection the first time that
 * connection runs it (then EVALSHA, falling back to EVAL where Redis lost the script), and the
 * key count always matches the keys given.
 */
export class LuaScript<Reply> {
  constructor(
    readonly name: string,
    readonly lua: string,
  ) {}

  run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<Reply> {
    if (!(this.name in redis)) redis.defineCommand(this.name, { lua: this.lua });
    const command = (redis as unknown as Record<string, (...a: (string | number)[]) => Promise<Reply>>)[this.name];
    if (!command) throw new Error(`the Lua command ${this.name} is not defined on this connection`);
    return command.call(redis, keys.length, ...keys, ...args);
  }
}

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

import { type DaytonaAction, type ToolName, toolOf } from '@research/contracts';
import { createDefaultRegistry, type ToolRegistry } from './registry.js';
import { toolParameters } from './tools/catalog-tool.js';

/** One `<tool …>…</tool>` block as written, before validation. */
export type RawToolBlock = {
  tool: string;
  params: Record<string, string>;
  /** Offsets of the block in the scanned text (`end` exclusive). */
  start: number;
  end: number;
  /** Syntax problem (unterminated value or block, stray text); the params are then incomplete. */
  error?: string;
};

export type ParsedToolCall = {
  /** The tool that runs the action (daytona-execute for a translated deprecated alias). */
  tool: ToolName;
  args: DaytonaAction;
  /** The deprecated tool the model actually wrote, when it was translated. */
  deprecatedTool?: string;
};

export type ParseResult = {
  calls: ParsedToolCall[];
  /** One message per malformed block, meant to be shown to the model. */
  errors: string[];
};

const KEY = /[A-Za-z_][\w.-]*/y;
const SPACE = /\s*/y;
const INLINE_SPACE = /[ \t]*/y;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `\"` is a quote and `\\` a backslash; any other backslash stays as written (code keeps its `\n`). */
function unescapeValue(raw: string): string {
  return raw.replace(/\\(["\\])/g, '$1');
}

export function escapeValue(value: string): string {
  return value.replace(/[\\"]/g, '\\$&');
}

function skip(re: RegExp, text: string, pos: number): number {
  re.lastIndex = pos;
  re.exec(text);
  return re.lastIndex;
}

function matchAt(re: RegExp, text: string, pos: number): string | undefined {
  re.lastIndex = pos;
  return re.exec(text)?.[0];
}

/**
 * Where blocks may start: the opening tag of any known tool, and the same after whitespace (at
 * the start of a line or after a space), which is where a new block starts even when the one
 * before it never closed.
 */
type Openers = {
  source: string;
  at: RegExp;
  afterSpace: RegExp /** Global, captures the tool name. */;
  anywhere: RegExp;
  /** Per tag, compiled on first use (see `tagRegexps`). */
  tags: Map<string, TagRegexps>;
};

/** A tag's own regexps: where a body value ends, its closing tag here (sticky) and anywhere after (global). */
type TagRegexps = { closer: RegExp; close: RegExp; closeAfter: RegExp };

function tagRegexps(o: Openers, tag: string): TagRegexps {
  let r = o.tags.get(tag);
  if (!r) {
    const close = `</${escapeRegExp(tag)}\\s*>`;
    r = { closer: bodyCloser(tag, o), close: new RegExp(close, 'y'), closeAfter: new RegExp(close, 'g') };
    o.tags.set(tag, r);
  }
  return r;
}

/**
 * The openers of each tool set seen, compiled once: a worker parses every model turn of every
 * task with the same few registries. Their regexps keep `lastIndex` between uses, so each use
 * sets it first. Bounded, in case a caller makes tool sets without end.
 */
const compiledOpeners = new Map<string, Openers>();

function openers(toolNames: readonly string[]): Openers {
  const key = toolNames.join(' ');
  let o = compiledOpeners.get(key);
  if (!o) {
    if (compiledOpeners.size >= 32) compiledOpeners.clear();
    o = compileOpeners(toolNames);
    compiledOpeners.set(key, o);
  }
  return o;
}

function compileOpeners(toolNames: readonly string[]): Openers {
  // Longest first, so `<execute-command-x` never matches a shorter name.
  const names = [...toolNames]
    .sort((a, b) => b.length - a.length)
    .map(escapeRegExp)
    .join('|');
  const source = `<(?:${names})(?=[\\s/>]|$)`;
  return {
    source,
    at: new RegExp(source, 'y'),
    afterSpace: new RegExp(`(?<=\\s)${source}`, 'g'),
    anywhere: new RegExp(`<(${names})(?=[\\s/>]|$)`, 'g'),
    tags: new Map(),
  };
}

/** Index of the next block's opening tag after whitespace, at or after `from`; text.length if none. */
function nextOpener(o: Openers, text: string, from: number): number {
  o.afterSpace.lastIndex = from;
  return o.afterSpace.exec(text)?.index ?? text.length;
}

/** First `"` at or after `from` that is not escaped by a backslash, before `to`; -1 if none. */
function unescapedQuote(text: string, from: number, to: number): number {
  for (let j = from; j < to; j++) {
    if (text[j] === '\\') j++;
    else if (text[j] === '"') return j;
  }
  return -1;
}

type ValueScan =
  | { ok: true; value: string; next: number }
  | { ok: false; problem: 'unterminated'; from: number }
  | { ok: false; problem: 'stray'; stray: string; from: number };

/**
 * Reads a quoted value in a block's body, starting after its opening quote. Escaped values
 * (what `renderToolCall` writes) end at their first unescaped quote, whatever they contain.
 * Models often leave inner quotes unescaped (`command="echo "hi""`), so when that first quote
 * is not followed by the end of the line and another `key="` or the closing tag (or another
 * `key="` on the same line), a later quote may close the value instead, but only one before the
 * next block's opening tag: a malformed block must not take the next one with it. Text after
 * the first quote on its line (`filePath="a" junk`) is stray text, not an inner quote.
 */
function scanBodyValue(text: string, pos: number, closer: RegExp, o: Openers): ValueScan {
  const closesAt = (q: number): boolean => {
    closer.lastIndex = q + 1;
    return closer.test(text);
  };
  const found = (q: number): ValueScan => ({ ok: true, value: unescapeValue(text.slice(pos, q)), next: q + 1 });
  const first = unescapedQuote(text, pos, text.length);
  if (first < 0) return { ok: false, problem: 'unterminated', from: pos };
  if (closesAt(first)) return found(first);
  const limit = nextOpener(o, text, pos);
  if (first >= limit) return { ok: false, problem: 'unterminated', from: pos };
  const lineEnd = text.indexOf('\n', first);
  const rest = text.slice(first + 1, Math.min(lineEnd < 0 ? text.length : lineEnd, limit));
  if (/^[ \t]+\S/.test(rest)) return { ok: false, problem: 'stray', stray: rest, from: first + 1 };
  for (let q = unescapedQuote(text, first + 1, limit); q >= 0; q = unescapedQuote(text, q + 1, limit)) {
    if (closesAt(q)) return found(q);
  }
  return { ok: false, problem: 'unterminated', from: pos };
}

function bodyCloser(tag: string, o: Openers): RegExp {
  const close = `</${escapeRegExp(tag)}\\s*>`;
  const nextKey = `[A-Za-z_][\\w.-]*[ \\t]*=[ \\t]*"`;
  return new RegExp(
    `[ \\t]*(?:\\r?\\n\\s*(?:${nextKey}|${close})|${close}|[ \\t]+${nextKey}|\\s+${o.source}|\\s*$)`,
    'y',
  );
}

function clip(s: string, max = 40): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return JSON.stringify(one.length > max ? `${one.slice(0, max)}…` : one);
}

/**
 * Finds every block of the given tools in free text. Never throws: problems are reported on
 * the block. Prose, code fences and other markup around the blocks are ignored.
 */
export function scanToolBlocks(text: string, toolNames: readonly string[]): RawToolBlock[] {
  if (toolNames.length === 0) return [];
  const o = openers(toolNames);
  const opener = o.anywhere;
  opener.lastIndex = 0;
  const blocks: RawToolBlock[] = [];
  for (let m = opener.exec(text); m !== null; m = opener.exec(text)) {
    const block = scanBlock(text, m.index, m[1] as string, o);
    if (!block) continue;
    blocks.push(block);
    opener.lastIndex = Math.max(block.end, m.index + 1);
  }
  return blocks;
}

/**
 * `<daytona-execute>` named in prose ("I ran three <daytona-execute> blocks") is not a call:
 * no attributes, the body does not start with key="value", and no closing tag follows before
 * the next opening tag.
 * Without this, a final answer that mentions the tool would bounce back as an error.
 */
function isMention(text: string, bodyStart: number, tag: string): boolean {
  const p = skip(SPACE, text, bodyStart);
  if (matchAt(/[A-Za-z_][\w.-]*[ \t]*=/y, text, p) !== undefined) return false;
  const close = text.indexOf(`</${tag}`, bodyStart);
  if (close < 0) return true;
  // The next closing tag belongs to a later block.
  const reopen = new RegExp(`<${escapeRegExp(tag)}(?=[\\s/>]|$)`, 'g');
  reopen.lastIndex = bodyStart;
  const next = reopen.exec(text);
  return next !== null && next.index < close;
}

function scanBlock(text: string, start: number, tag: string, o: Openers): RawToolBlock | undefined {
  // A Map, so a key like `__proto__` is just a (rejected) parameter name.
  const seen = new Map<string, string>();
  const params = (): Record<string, string> => Object.fromEntries(seen);
  const { closer, close, closeAfter: closeTag } = tagRegexps(o, tag);
  const fail = (error: string, from: number): RawToolBlock => {
    // Resynchronise on the closing tag so later blocks in the same message still parse, but
    // never past the next block's opening tag: this block may have lost its closing tag.
    const limit = nextOpener(o, text, from);
    closeTag.lastIndex = from;
    const closed = closeTag.exec(text);
    return {
      tool: tag,
      params: params(),
      start,
      end: closed && closed.index < limit ? closed.index + closed[0].length : limit,
      error,
    };
  };
  const setParam = (key: string, value: string): string | undefined => {
    if (seen.has(key)) return `parameter "${key}" is given twice`;
    seen.set(key, value);
    return undefined;
  };
  /** A new block opening here (after whitespace) ends this one. */
  const newBlockAt = (p: number): boolean => /\s/.test(text[p - 1] ?? '') && matchAt(o.at, text, p) !== undefined;
  const unclosed = (p: number, what: string): RawToolBlock => ({
    tool: tag,
    params: params(),
    start,
    end: p,
    error: `${what}, and a new block starts before it ends`,
  });

  // Attributes on the opening tag.
  let p = start + 1 + tag.length;
  let selfClosing = false;
  for (;;) {
    p = skip(SPACE, text, p);
    if (text.startsWith('/>', p)) {
      selfClosing = true;
      p += 2;
      break;
    }
    if (text[p] === '>') {
      p += 1;
      break;
    }
    if (p >= text.length) return fail(`<${tag}> tag is not closed with ">"`, p);
    if (newBlockAt(p)) return unclosed(p, `<${tag}> tag is not closed with ">"`);
    const key = matchAt(KEY, text, p);
    if (!key) return fail(`unexpected ${clip(text.slice(p))} in the <${tag}> tag; write key="value" attributes`, p);
    p = skip(SPACE, text, p + key.length);
    if (text[p] !== '=') return fail(`attribute "${key}" has no ="value"`, p);
    p = skip(SPACE, text, p + 1);
    if (text[p] !== '"') return fail(`the value of "${key}" must be in double quotes`, p);
    // Inside the tag, a value ends at its first unescaped quote, unless a new block starts first.
    const limit = nextOpener(o, text, p + 1);
    const q = unescapedQuote(text, p + 1, limit);
    if (q < 0)
      return {
        tool: tag,
        params: params(),
        start,
        end: limit,
        error: `the value of "${key}" is not terminated (missing closing ")`,
      };
    const dup = setParam(key, unescapeValue(text.slice(p + 1, q)));
    if (dup) return fail(dup, q + 1);
    p = q + 1;
  }
  if (selfClosing) return { tool: tag, params: params(), start, end: p };
  if (seen.size === 0 && isMention(text, p, tag)) return undefined;

  // key="value" lines in the body.
  for (;;) {
    p = skip(SPACE, text, p);
    const closing = matchAt(close, text, p);
    if (closing !== undefined) return { tool: tag, params: params(), start, end: p + closing.length };
    if (p >= text.length)
      return { tool: tag, params: params(), start, end: text.length, error: `<${tag}> is not closed with </${tag}>` };
    if (newBlockAt(p)) return unclosed(p, `<${tag}> is not closed with </${tag}>`);
    const key = matchAt(KEY, text, p);
    if (!key) return fail(`expected key="value" but found ${clip(text.slice(p))}`, p);
    p = skip(INLINE_SPACE, text, p + key.length);
    if (text[p] !== '=') return fail(`expected key="value" but found ${clip(text.slice(p - key.length))}`, p);
    p = skip(INLINE_SPACE, text, p + 1);
    if (text[p] !== '"') return fail(`the value of "${key}" must be in double quotes`, p);
    const v = scanBodyValue(text, p + 1, closer, o);
    if (!v.ok) {
      return v.problem === 'stray'
        ? fail(
            `unexpected ${clip(v.stray)} after the value of "${key}"; write one key="value" per line, and \\" for a quote inside a value`,
            v.from,
          )
        : fail(`the value of "${key}" is not terminated (missing closing ")`, v.from);
    }
    const dup = setParam(key, v.value);
    if (dup) return fail(dup, v.next);
    p = v.next;
  }
}

let defaultRegistry: ToolRegistry | undefined;

/**
 * Parses every tool block in a model's text into calls of the registry's tools. Malformed blocks
 * (unterminated, unknown action, missing parameter, unknown tool) become messages in `errors`
 * for the model; this function never throws.
 */
export function parseToolCalls(text: string, options: { registry?: ToolRegistry } = {}): ParseResult {
  defaultRegistry ??= createDefaultRegistry();
  const registry = options.registry ?? defaultRegistry;
  const calls: ParsedToolCall[] = [];
  const errors: string[] = [];
  const blocks = scanToolBlocks(text, registry.names());
  blocks.forEach((block, i) => {
    const where = blocks.length > 1 ? `block ${i + 1} <${block.tool}>` : `<${block.tool}>`;
    if (block.error) {
      errors.push(`${where}: ${block.error}`);
      return;
    }
    const resolved = registry.resolve(block.tool, block.params);
    if (!resolved.ok) errors.push(`${where}: ${resolved.error}`);
    else
      calls.push({
        tool: toolOf(resolved.args),
        args: resolved.args,
        ...(resolved.deprecatedTool ? { deprecatedTool: resolved.deprecatedTool } : {}),
      });
  });
  return { calls, errors };
}

/**
 * Writes an action in the seed's format: one `key="value"` line per parameter, `action` first.
 * A call of a single-action tool whose values fit on one line is written in the short form,
 * as the prompt shows it: `<web-search query="…"/>`.
 */
export function renderToolCall(args: DaytonaAction): string {
  const { tool, params } = toolParameters(args);
  return renderToolBlock(tool, params, { short: !('action' in params) });
}

/**
 * Writes any block of `tool` with these parameters, unchecked (a test may need one the parser
 * must refuse): one `key="value"` line each, or with `short` and values on one line, the
 * attribute form.
 */
export function renderToolBlock(
  tool: string,
  params: Record<string, unknown>,
  options: { short?: boolean } = {},
): string {
  const pairs = Object.entries(params).map(([k, v]) => `${k}="${escapeValue(String(v))}"`);
  if (options.short && pairs.every((p) => !p.includes('\n'))) return `<${tool} ${pairs.join(' ')}/>`;
  return `<${tool}>\n${pairs.join('\n')}\n</${tool}>`;
}

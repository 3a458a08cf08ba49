import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DaytonaAction } from '@research/contracts';
import { parseToolCalls, renderToolCall } from './xml.js';

// Verbatim from seed/000_423dcf16567f6e93.txt, "Example Usage".
const SEED_EXAMPLE = `\`\`\`xml
<!-- Create todo.md in Daytona container -->
<daytona-execute>
action="create-file"
filePath="market_analysis_todo.md"
content="# Financial Analysis Project
- [ ] Gather market data
- [ ] Run calculations"
</daytona-execute>

<!-- Execute Python analysis in container -->
<daytona-execute>
action="execute-command"
command="python3 -c 'import pandas as pd; print(pd.__version__)'"
</daytona-execute>

<!-- Read results from container -->
<daytona-execute>
action="read-file"
filePath="analysis_results.json"
</daytona-execute>
\`\`\``;

// Verbatim from design.md, "Tool-call format".
const DESIGN_EXAMPLE = `<daytona-execute>
action="create-file"
filePath="market_analysis_todo.md"
content="# Financial Analysis Project
- [ ] Gather market data"
</daytona-execute>`;

const args = (text: string): DaytonaAction[] => parseToolCalls(text).calls.map((c) => c.args);

describe('parseToolCalls: the seed examples', () => {
  it('parses the three blocks of the seed in order, ignoring the fence and comments', () => {
    const result = parseToolCalls(SEED_EXAMPLE);
    expect(result.errors).toEqual([]);
    expect(result.calls.map((c) => c.args)).toEqual([
      {
        action: 'create-file',
        filePath: 'market_analysis_todo.md',
        content: '# Financial Analysis Project\n- [ ] Gather market data\n- [ ] Run calculations',
      },
      { action: 'execute-command', command: "python3 -c 'import pandas as pd; print(pd.__version__)'" },
      { action: 'read-file', filePath: 'analysis_results.json' },
    ]);
    expect(result.calls.every((c) => c.tool === 'daytona-execute')).toBe(true);
  });

  it('parses the design document example', () => {
    expect(args(DESIGN_EXAMPLE)).toEqual([
      {
        action: 'create-file',
        filePath: 'market_analysis_todo.md',
        content: '# Financial Analysis Project\n- [ ] Gather market data',
      },
    ]);
  });
});

describe('parseToolCalls: edge cases', () => {
  it('keeps multi-line values exactly, including blank lines and indentation', () => {
    const text =
      '<daytona-execute>\naction="create-file"\nfilePath="a.py"\ncontent="def f():\n    return 1\n\n\nprint(f())\n"\n</daytona-execute>';
    expect(args(text)).toEqual([
      { action: 'create-file', filePath: 'a.py', content: 'def f():\n    return 1\n\n\nprint(f())\n' },
    ]);
  });

  it('reads \\" as a quote and \\\\ as a backslash, and leaves other escapes as written', () => {
    const text =
      '<daytona-execute>\naction="execute-command"\ncommand="echo \\"hi there\\" && printf \'a\\nb\' && echo \\\\"\n</daytona-execute>';
    expect(args(text)).toEqual([
      { action: 'execute-command', command: 'echo "hi there" && printf \'a\\nb\' && echo \\' },
    ]);
  });

  it('tolerates unescaped quotes inside a value when the closing quote is unambiguous', () => {
    const text = '<daytona-execute>\naction="execute-command"\ncommand="python3 -c "print(1)""\n</daytona-execute>';
    expect(args(text)).toEqual([{ action: 'execute-command', command: 'python3 -c "print(1)"' }]);
    const code =
      '<daytona-execute>\naction="create-file"\nfilePath="x.py"\ncontent="print("a")\nprint("b")"\n</daytona-execute>';
    expect(args(code)).toEqual([{ action: 'create-file', filePath: 'x.py', content: 'print("a")\nprint("b")' }]);
  });

  it('parses several blocks with prose around and between them', () => {
    const text = [
      'Sure! First I will look around.',
      '<daytona-execute action="list-files" path="."/>',
      'Then I run the script:',
      '<daytona-execute>\n  action="execute-command"\n  command="python3 run.py"\n  timeoutMs="5000"\n</daytona-execute> and that is all.',
    ].join('\n');
    expect(args(text)).toEqual([
      { action: 'list-files', path: '.' },
      { action: 'execute-command', command: 'python3 run.py', timeoutMs: 5000 },
    ]);
  });

  it('takes attributes on the tag, self-closing or with a body', () => {
    expect(args('<daytona-execute action="read-file" filePath="r.json" />')).toEqual([
      { action: 'read-file', filePath: 'r.json' },
    ]);
    expect(args('<daytona-execute action="list-files"/>')).toEqual([{ action: 'list-files' }]);
    expect(args('<daytona-execute action="create-file" filePath="n.md">\ncontent="hello"\n</daytona-execute>')).toEqual(
      [{ action: 'create-file', filePath: 'n.md', content: 'hello' }],
    );
  });

  it('accepts several parameters on one line', () => {
    expect(args('<daytona-execute>\naction="read-file" filePath="a.txt"\n</daytona-execute>')).toEqual([
      { action: 'read-file', filePath: 'a.txt' },
    ]);
  });

  it('returns no calls and no errors for plain prose (a final answer)', () => {
    expect(parseToolCalls('All done: the report is in report.md. <b>Bold</b> claims aside.')).toEqual({
      calls: [],
      errors: [],
    });
  });

  it('reports an unterminated value and still parses the next block', () => {
    const text =
      '<daytona-execute>\naction="create-file"\nfilePath="a.md"\ncontent="never closed\n</daytona-execute>\n<daytona-execute action="list-files"/>';
    const result = parseToolCalls(text);
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toMatch(/block 1 <daytona-execute>: the value of "content" is not terminated/);
    expect(result.calls.map((c) => c.args)).toEqual([{ action: 'list-files' }]);
  });

  it('reports an unterminated block', () => {
    const result = parseToolCalls('<daytona-execute>\naction="list-files"\n');
    expect(result.calls).toEqual([]);
    expect(result.errors[0]).toMatch(/not closed with <\/daytona-execute>/);
  });

  it('reports an unknown action with the valid ones', () => {
    const result = parseToolCalls('<daytona-execute>\naction="delete-file"\nfilePath="a"\n</daytona-execute>');
    expect(result.calls).toEqual([]);
    expect(result.errors[0]).toMatch(
      /unknown action "delete-file"; use one of create-file, execute-command, read-file, list-files/,
    );
  });

  it('reports a missing parameter by name', () => {
    const result = parseToolCalls('<daytona-execute>\naction="create-file"\nfilePath="a.md"\n</daytona-execute>');
    expect(result.errors).toEqual(['<daytona-execute>: daytona-execute: create-file: missing parameter "content"']);
    expect(parseToolCalls('<daytona-execute>\nfilePath="a.md"\n</daytona-execute>').errors[0]).toMatch(
      /missing parameter "action"/,
    );
  });

  it('reports unknown and repeated parameters, bare text and unquoted values', () => {
    expect(
      parseToolCalls('<daytona-execute>\naction="read-file"\nfilePath="a"\nmode="fast"\n</daytona-execute>').errors[0],
    ).toMatch(/unknown parameter "mode"/);
    expect(
      parseToolCalls('<daytona-execute>\naction="read-file"\naction="list-files"\n</daytona-execute>').errors[0],
    ).toMatch(/"action" is given twice/);
    expect(parseToolCalls('<daytona-execute>\nplease list the files\n</daytona-execute>').errors[0]).toMatch(
      /expected key="value"/,
    );
    expect(parseToolCalls('<daytona-execute>\naction=list-files\n</daytona-execute>').errors[0]).toMatch(
      /must be in double quotes/,
    );
    expect(parseToolCalls('<daytona-execute action="list-files"').errors[0]).toMatch(/not closed with ">"/);
  });

  it('reports a timeoutMs that is not a whole number as such, not as missing', () => {
    const bad = (value: string) =>
      parseToolCalls(
        `<daytona-execute>\naction="execute-command"\ncommand="ls"\ntimeoutMs="${value}"\n</daytona-execute>`,
      ).errors;
    expect(bad('soon')).toEqual([
      '<daytona-execute>: daytona-execute: execute-command: timeoutMs must be a whole number of milliseconds (got "soon")',
    ]);
    expect(bad('1.5')).toEqual([
      '<daytona-execute>: daytona-execute: execute-command: timeoutMs must be a whole number of milliseconds (got "1.5")',
    ]);
    expect(bad('0')[0]).toMatch(/parameter "timeoutMs": .*>=1/);
    expect(parseToolCalls('<execute-command>\ncommand="ls"\ntimeout="soon"\n</execute-command>').errors[0]).toMatch(
      /timeoutMs must be a whole number of milliseconds \(got "soon"\)/,
    );
  });

  it('reports stray text after a value for that block only, and parses the next block', () => {
    const next = '<daytona-execute>\naction="read-file"\nfilePath="b.md"\n</daytona-execute>';
    const last = parseToolCalls(
      `<daytona-execute>\naction="read-file"\nfilePath="a.md" junk\n</daytona-execute>\n${next}`,
    );
    expect(last.errors).toEqual([
      'block 1 <daytona-execute>: unexpected "junk" after the value of "filePath"; write one key="value" per line, and \\" for a quote inside a value',
    ]);
    expect(last.calls.map((c) => c.args)).toEqual([{ action: 'read-file', filePath: 'b.md' }]);
    // Not read as an unescaped quote inside a value that would run on into the next parameter.
    const middle = parseToolCalls(
      `<daytona-execute>\naction="create-file"\nfilePath="a.md" junk\ncontent="x"\n</daytona-execute>\n${next}`,
    );
    expect(middle.errors).toEqual([
      expect.stringMatching(/^block 1 <daytona-execute>: unexpected "junk" after the value of "filePath"/),
    ]);
    expect(middle.calls.map((c) => c.args)).toEqual([{ action: 'read-file', filePath: 'b.md' }]);
    const attribute = parseToolCalls(
      `<daytona-execute action="read-file" filePath="a.md" junk/>\n<daytona-execute action="list-files"/>`,
    );
    expect(attribute.errors).toHaveLength(1);
    expect(attribute.calls.map((c) => c.args)).toEqual([{ action: 'list-files' }]);
  });

  it('ends a block that is never closed where the next block opens, and parses that one', () => {
    const next = '<daytona-execute>\naction="read-file"\nfilePath="b.md"\n</daytona-execute>';
    const unclosed = parseToolCalls(`<daytona-execute>\naction="list-files"\n\n${next}`);
    expect(unclosed.errors).toEqual([
      'block 1 <daytona-execute>: <daytona-execute> is not closed with </daytona-execute>, and a new block starts before it ends',
    ]);
    expect(unclosed.calls.map((c) => c.args)).toEqual([{ action: 'read-file', filePath: 'b.md' }]);
    // An unterminated value does not run into the next block either, nor does an open tag.
    const value = parseToolCalls(
      `<daytona-execute>\naction="create-file"\nfilePath="a.md"\ncontent="never closed\n${next}`,
    );
    expect(value.errors).toEqual([
      expect.stringMatching(/^block 1 <daytona-execute>: the value of "content" is not terminated/),
    ]);
    expect(value.calls.map((c) => c.args)).toEqual([{ action: 'read-file', filePath: 'b.md' }]);
    const tag = parseToolCalls(`Listing first: <daytona-execute action="list-files" ${next}`);
    expect(tag.errors).toEqual([
      expect.stringMatching(/^block 1 <daytona-execute>: <daytona-execute> tag is not closed with ">"/),
    ]);
    expect(tag.calls.map((c) => c.args)).toEqual([{ action: 'read-file', filePath: 'b.md' }]);
  });

  it('does not let a __proto__ parameter reach the prototype', () => {
    const result = parseToolCalls('<daytona-execute>\naction="list-files"\n__proto__="x"\n</daytona-execute>');
    expect(result.errors[0]).toMatch(/unknown parameter "__proto__"/);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('translates the deprecated <file-creation> and <execute-command> tags', () => {
    const result = parseToolCalls(
      '<file-creation>\nfilePath="old.md"\ncontent="x"\n</file-creation>\n<execute-command>\ncommand="ls"\n</execute-command>',
    );
    expect(result.errors).toEqual([]);
    expect(result.calls).toEqual([
      {
        tool: 'daytona-execute',
        args: { action: 'create-file', filePath: 'old.md', content: 'x' },
        deprecatedTool: 'file-creation',
      },
      {
        tool: 'daytona-execute',
        args: { action: 'execute-command', command: 'ls' },
        deprecatedTool: 'execute-command',
      },
    ]);
  });

  it('ignores the tag named in prose, but not a call with a bad body', () => {
    expect(parseToolCalls('Done: I ran the three <daytona-execute> blocks you gave me.')).toEqual({
      calls: [],
      errors: [],
    });
    expect(
      parseToolCalls('Use `<daytona-execute>` for everything.\n<daytona-execute action="list-files"/>').calls,
    ).toHaveLength(1);
    expect(parseToolCalls('<daytona-execute>\nlist the files\n</daytona-execute>').errors).toHaveLength(1);
    expect(
      parseToolCalls('Write a <daytona-execute> block:\n<daytona-execute>\naction="list-files"\n</daytona-execute>'),
    ).toEqual({
      calls: [{ tool: 'daytona-execute', args: { action: 'list-files' } }],
      errors: [],
    });
  });

  it('does not mistake similar tag names for the tool', () => {
    expect(parseToolCalls('<daytona-executes>\naction="list-files"\n</daytona-executes>')).toEqual({
      calls: [],
      errors: [],
    });
  });
});

describe('renderToolCall', () => {
  it('writes the seed format, action first', () => {
    expect(renderToolCall({ action: 'create-file', filePath: 'todo.md', content: '# T\n- [ ] "a"' })).toBe(
      '<daytona-execute>\naction="create-file"\nfilePath="todo.md"\ncontent="# T\n- [ ] \\"a\\""\n</daytona-execute>',
    );
  });
});

// Strings rich in the characters that matter to the format.
const tricky = fc.string({
  unit: fc.oneof(
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        '"',
        '\\',
        '\n',
        '\r\n',
        '<',
        '>',
        '/',
        '=',
        ' ',
        '\t',
        'a',
        'Z',
        '\\"',
        '</daytona-execute>',
        'action="',
        'x="',
        '<daytona-execute>',
      ),
    },
    { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 1 }) },
  ),
  maxLength: 40,
});
const nonEmpty = tricky.filter((s) => s.length > 0);

const action: fc.Arbitrary<DaytonaAction> = fc.oneof(
  fc.record({ action: fc.constant('create-file' as const), filePath: nonEmpty, content: tricky }),
  fc.record(
    {
      action: fc.constant('execute-command' as const),
      command: nonEmpty,
      timeoutMs: fc.integer({ min: 1, max: 86_400_000 }),
      cwd: nonEmpty,
    },
    { requiredKeys: ['action', 'command'] },
  ),
  fc.record({ action: fc.constant('read-file' as const), filePath: nonEmpty }),
  fc.record({ action: fc.constant('list-files' as const), path: nonEmpty }, { requiredKeys: ['action'] }),
);

/** Fragments of the format, so generated text is mostly near-miss blocks. */
const grammar = fc
  .array(
    fc.constantFrom(
      '<daytona-execute',
      '<daytona-execute>',
      '</daytona-execute>',
      '/>',
      '>',
      'action="',
      'create-file',
      'list-files',
      '"',
      '\\',
      '\n',
      ' ',
      '=',
      'filePath',
      'content="',
      '<file-creation>',
      '__proto__="',
    ),
    { maxLength: 30 },
  )
  .map((parts) => parts.join(''));

describe('parseToolCalls: properties', () => {
  it('parse(render(x)) gives back x for any valid action', () => {
    fc.assert(
      fc.property(action, (x) => {
        const result = parseToolCalls(renderToolCall(x));
        expect(result.errors).toEqual([]);
        expect(result.calls.map((c) => c.args)).toEqual([x]);
      }),
      { numRuns: 500 },
    );
  });

  it('several rendered blocks with prose between them parse back in order', () => {
    const prose = fc.string({ maxLength: 30 }).map((s) => s.replace(/</g, '('));
    fc.assert(
      fc.property(fc.array(fc.tuple(prose, action), { minLength: 1, maxLength: 4 }), prose, (items, tail) => {
        const text = `${items.map(([p, a]) => `${p}\n${renderToolCall(a)}`).join('\n')}\n${tail}`;
        expect(parseToolCalls(text).calls.map((c) => c.args)).toEqual(items.map(([, a]) => a));
      }),
      { numRuns: 200 },
    );
  });

  it('a well-formed block on its own line parses whatever malformed text comes before it', () => {
    fc.assert(
      fc.property(grammar, action, (junk, x) => {
        const result = parseToolCalls(`${junk}\n${renderToolCall(x)}`);
        expect(result.calls.at(-1)?.args).toEqual(x);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws, whatever the text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), grammar), (text) => {
        const result = parseToolCalls(text);
        expect(Array.isArray(result.calls) && Array.isArray(result.errors)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

/** Items of one key waiting for the write in flight to end, and who waits for each. */
interface Group<I, O> {
  items: I[];
  waiters: { resolve: (outcome: O) => void; reject: (err: unknown) => void }[];
}

/**
 * Group commit per key: an item whose key has no write in flight is written at once, alone;
 * one that arrives while its key's write is in flight joins the group written as soon as that
 * write ends. Nothing waits on a timer, so an idle process writes each item as it comes, and
 * under load the concurrent items of one key share one call (and its round trips). `write`
 * answers each item of a group, in order; when it throws, every item of that group gets the
 * error. A key's writes go one after the other; other keys never wait behind them.
 */
export class GroupCommit<I, O> {
  /** Per key: the groups that arrived while its write was in flight, oldest first. */
  private readonly waiting = new Map<string, Group<I, O>[]>();
  /** Keys with a write in flight. */
  private readonly writing = new Set<string>();

  constructor(
    private readonly write: (key: string, items: I[]) => Promise<O[]>,
    /** The most items one write takes. */
    private readonly maxGroup = Number.POSITIVE_INFINITY,
  ) {}

  add(key: string, item: I): Promise<O> {
    return new Promise((resolve, reject) => {
      const groups = this.waiting.get(key) ?? [];
      let group = groups.at(-1);
      if (group === undefined || group.items.length >= this.maxGroup) {
        group = { items: [], waiters: [] };
        groups.push(group);
        this.waiting.set(key, groups);
      }
      group.items.push(item);
      group.waiters.push({ resolve, reject });
      if (!this.writing.has(key)) this.writeNext(key);
    });
  }

  /** Writes the key's oldest waiting group, then the next one, until none waits. */
  private writeNext(key: string): void {
    const groups = this.waiting.get(key);
    const group = groups?.shift();
    if (group === undefined) {
      this.writing.delete(key);
      return;
    }
    // A key's list goes once it is empty, so the next item starts a new one.
    if (groups!.length === 0) this.waiting.delete(key);
    this.writing.add(key);
    this.write(key, group.items)
      .then(
        (outcomes) => {
          outcomes.forEach((outcome, i) => {
            group.waiters[i]!.resolve(outcome);
          });
        },
        (err: unknown) => {
          for (const w of group.waiters) w.reject(err);
        },
      )
      .finally(() => this.writeNext(key));
  }
}

import { InputError } from '../errors.js';

/** Problems spelled out in `message`; a file with thousands of bad lines stays readable. */
const MAX_LISTED = 50;

/**
 * Every problem found in one inventory, so an admin fixes them in one pass. It is an InputError
 * (location/key/problem of the first problem, by line); `message` lists all, one per line.
 */
export class InventoryErrors extends InputError {
  override name = 'InventoryErrors';
  readonly problems: readonly InputError[];

  constructor(problems: readonly [InputError, ...InputError[]]) {
    const [first] = problems;
    super(first.location, first.key, first.problem);
    this.problems = problems;
    const shown = problems.slice(0, MAX_LISTED).map((p) => p.message);
    if (problems.length > MAX_LISTED) shown.push(`... and ${problems.length - MAX_LISTED} more problems`);
    this.message = shown.join('\n');
  }
}

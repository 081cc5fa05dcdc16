/**
 * YAML text -> plain value, with every problem mapped back to "file:line" and a dotted key.
 * Decoding, size and alias limits are enforced here, before any value is looked at.
 */

import { isAlias, isMap, isNode, isScalar, isSeq, LineCounter, parseDocument, visit } from 'yaml';
import type { Document } from 'yaml';
import { z } from 'zod';
import { InputError } from '../errors.js';
import { InventoryErrors } from './errors.js';
import { preview } from './validators.js';

export const MAX_SOURCE_BYTES = 4 * 1024 * 1024;
/** Alias nodes a document may expand to; real inventories use a handful. */
export const MAX_ALIAS_COUNT = 100;

export type YamlPath = readonly (string | number)[];

export interface ParsedYaml {
  value: unknown;
  /** "file:line" of the key (or list item) at `path`, or of its nearest existing ancestor. */
  locate(path: YamlPath): string;
}

/**
 * "gateways.gw-a1.links[1].weight"; the root is "(document)". A key that is not a plain name
 * (it came from the file and may be hostile) is shown escaped and cut short: `gateways["gw;a1"]`.
 */
export function formatKey(path: YamlPath): string {
  let key = '';
  for (const segment of path) {
    if (typeof segment === 'number') key += `[${segment}]`;
    else if (/^[A-Za-z0-9_@-][A-Za-z0-9_.@-]{0,62}$/.test(segment)) key += key === '' ? segment : `.${segment}`;
    else key += `[${preview(segment)}]`;
  }
  return key === '' ? '(document)' : key;
}

function fail(location: string, key: string, problem: string): never {
  throw new InventoryErrors([new InputError(location, key, problem)]);
}

export function checkSourceSize(size: number, file: string): void {
  if (size > MAX_SOURCE_BYTES) {
    fail(`${file}:1`, '(document)', `file is ${size} bytes; the limit is ${MAX_SOURCE_BYTES} bytes (4 MiB)`);
  }
}

/** Refuses oversized input and non-UTF-8 bytes, naming the first bad byte's offset and line. */
export function decodeSource(source: string | Uint8Array, file: string): string {
  if (typeof source === 'string') {
    // UTF-8 takes at least one byte per UTF-16 unit: a string that long is refused unmeasured.
    checkSourceSize(source.length > MAX_SOURCE_BYTES ? source.length : Buffer.byteLength(source), file);
    return source;
  }
  checkSourceSize(source.byteLength, file);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(source);
  } catch {
    const offset = firstInvalidUtf8Offset(source);
    let line = 1;
    for (let i = 0; i < offset; i++) if (source[i] === 0x0a) line++;
    fail(`${file}:${line}`, '(document)', `invalid UTF-8 at byte offset ${offset}`);
  }
}

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence. */
function firstInvalidUtf8Offset(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    let length: number;
    let min: number;
    if (b < 0x80) {
      i++;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) [length, min] = [2, 0x80];
    else if (b >= 0xe0 && b <= 0xef) [length, min] = [3, 0x800];
    else if (b >= 0xf0 && b <= 0xf4) [length, min] = [4, 0x10000];
    else return i;
    let codePoint = b & (0xff >> (length + 1));
    for (let k = 1; k < length; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      codePoint = (codePoint << 6) | (c & 0x3f);
    }
    if (codePoint < min || codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff)) return i;
    i += length;
  }
  return bytes.length;
}

/** Parses one YAML document; syntax errors, warnings and alias bombs become InventoryErrors. */
export function parseYamlSource(text: string, file: string): ParsedYaml {
  const lineCounter = new LineCounter();
  // prettyErrors off: its context excerpt builds a regexp that exhausts memory on deep nesting.
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, merge: false });
  const at = (offset: number) => `${file}:${lineCounter.linePos(offset).line}`;

  // One deep-nesting error is enough; the parser reports one per level.
  const exhausted = doc.errors.find((error) => error.code === 'RESOURCE_EXHAUSTION');
  const yamlErrors = exhausted ? [exhausted] : [...doc.errors, ...doc.warnings];
  const problems = yamlErrors.map((error) => {
    const problem = error === exhausted ? 'YAML is nested too deeply to parse' : `YAML: ${error.message}`;
    return new InputError(at(error.pos[0]), formatKey(pathAtOffset(doc, error.pos[0])), problem);
  });
  if (problems.length > 0) throw sortedErrors(problems);

  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    if (!(error instanceof ReferenceError || error instanceof RangeError)) throw error;
    const alias = firstAliasOffset(doc);
    fail(
      at(alias ?? 0),
      formatKey(pathAtOffset(doc, alias ?? 0)),
      error instanceof ReferenceError
        ? `aliases expand to more than ${MAX_ALIAS_COUNT} nodes (a YAML alias bomb?)`
        : 'YAML is nested too deeply to read',
    );
  }

  return {
    value,
    locate(path) {
      let node: unknown = doc.contents;
      let offset = isNode(node) ? (node.range?.[0] ?? 0) : 0;
      for (const segment of path) {
        if (isAlias(node)) node = node.resolve(doc);
        let next: unknown;
        if (isMap(node)) {
          const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
          if (!pair || !isScalar(pair.key)) break;
          offset = pair.key.range?.[0] ?? offset;
          next = pair.value;
        } else if (isSeq(node) && typeof segment === 'number') {
          next = node.items[segment];
          if (!isNode(next)) break;
          offset = next.range?.[0] ?? offset;
        } else break;
        node = next;
      }
      return at(offset);
    },
  };
}

/** Deepest path worth naming in a message; the schema is shallower than this. */
const MAX_KEY_DEPTH = 8;

/** The key path of the innermost pair (from its key to the end of its value) or item at `offset`. */
function pathAtOffset(doc: Document, offset: number): (string | number)[] {
  const path: (string | number)[] = [];
  const spans = (start: unknown, end: unknown) =>
    isNode(start) && isNode(end) && !!start.range && !!end.range && start.range[0] <= offset && offset < end.range[2];
  let node: unknown = doc.contents;
  while (path.length < MAX_KEY_DEPTH) {
    if (isMap(node)) {
      const pair = node.items.find((p) => spans(p.key, p.value ?? p.key));
      if (!pair || !isScalar(pair.key)) break;
      path.push(String(pair.key.value));
      node = pair.value;
    } else if (isSeq(node)) {
      const index = node.items.findIndex((item) => spans(item, item));
      if (index < 0) break;
      path.push(index);
      node = node.items[index];
    } else break;
  }
  return path;
}

function firstAliasOffset(doc: Document): number | undefined {
  let offset: number | undefined;
  visit(doc, {
    Alias(_, node) {
      offset = node.range?.[0];
      return visit.BREAK;
    },
  });
  return offset;
}

/** Decode, parse and validate a YAML file against a zod schema; throws InventoryErrors. */
export function parseYamlWithSchema<T extends z.ZodType>(
  source: string | Uint8Array,
  file: string,
  schema: T,
): z.output<T> {
  return validateYaml(parseYamlSource(decodeSource(source, file), file), schema);
}

/** Checks a parsed document against `schema`; each problem is reported at its key's line. */
export function validateYaml<T extends z.ZodType>(parsed: ParsedYaml, schema: T): z.output<T> {
  const result = schema.safeParse(parsed.value, { reportInput: true });
  if (result.success) return result.data;
  const problems = result.error.issues.flatMap((issue) => describeIssue(issue, schema));
  throw sortedErrors(problems.map((p) => new InputError(parsed.locate(p.path), formatKey(p.path), p.problem)));
}

/** All problems, ordered by line, as one InventoryErrors. */
export function sortedErrors(problems: readonly InputError[]): InventoryErrors {
  const line = (e: InputError) => Number(/:(\d+)$/.exec(e.location)?.[1] ?? 0);
  const [first, ...rest] = [...problems].sort((a, b) => line(a) - line(b));
  if (!first) throw new Error('sortedErrors needs at least one problem');
  return new InventoryErrors([first, ...rest]);
}

interface PathProblem {
  path: YamlPath;
  problem: string;
}

const TYPE_NAMES: Record<string, string> = { object: 'a mapping', array: 'a list', record: 'a mapping' };

function describeIssue(issue: z.core.$ZodIssue, schema: z.ZodType): PathProblem[] {
  const path = issue.path.filter((s): s is string | number => typeof s !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    const known = objectKeysAt(schema, path);
    return issue.keys.map((key) => {
      const suggestion = closest(key, known);
      return {
        path: [...path, key],
        problem: `unknown key ${preview(key)}${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`,
      };
    });
  }
  if (issue.code === 'invalid_key') {
    return [{ path, problem: `${issue.issues[0]?.message ?? issue.message} (got ${preview(path.at(-1))})` }];
  }
  if (issue.code === 'invalid_type' && issue.input === undefined) return [{ path, problem: 'is required' }];
  const message =
    issue.code === 'invalid_type' && issue.message.startsWith('Invalid input')
      ? `must be ${TYPE_NAMES[issue.expected] ?? `a ${issue.expected}`}`
      : issue.message;
  return [{ path, problem: issue.input === undefined ? message : `${message} (got ${preview(issue.input)})` }];
}

/** The keys a strict object in `schema` accepts at `path`, for "did you mean". */
function objectKeysAt(schema: z.ZodType, path: YamlPath): string[] {
  let node: unknown = schema;
  for (let depth = 0; depth <= path.length; depth++) {
    for (;;) {
      if (node instanceof z.ZodOptional || node instanceof z.ZodNullable || node instanceof z.ZodDefault) node = node.unwrap();
      else if (node instanceof z.ZodPipe) node = node.in;
      else break;
    }
    if (depth === path.length) break;
    const segment = path[depth];
    if (node instanceof z.ZodObject && typeof segment === 'string') node = node.shape[segment];
    else if (node instanceof z.ZodArray) node = node.element;
    else if (node instanceof z.ZodRecord) node = node.valueType;
    else return [];
  }
  return node instanceof z.ZodObject ? Object.keys(node.shape) : [];
}

/** The known key within edit distance 2 (or a third of its length) of `key`, if any. */
function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate);
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return Infinity;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * A reader for the tar stream the facts script sends lbprov's files in (one
 * `tar | base64` instead of two processes per file). Only what the script
 * produces is understood: regular files, ustar or GNU headers, GNU long names.
 */
export interface TarEntry {
  path: string;
  mode: number;
  content: Buffer;
}

const BLOCK = 512;

function field(header: Buffer, offset: number, length: number): string {
  const raw = header.subarray(offset, offset + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? length : end).toString('utf8');
}

function octal(header: Buffer, offset: number, length: number): number {
  const text = field(header, offset, length).trim();
  if (!/^[0-7]+$/.test(text)) throw new Error(`bad number in tar header: ${JSON.stringify(text)}`);
  return parseInt(text, 8);
}

export function readTar(archive: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  let longName: string | null = null;
  for (let at = 0; at + BLOCK <= archive.length; ) {
    const header = archive.subarray(at, at + BLOCK);
    if (header.every((b) => b === 0)) break;
    const size = octal(header, 124, 12);
    const type = String.fromCharCode(header[156] ?? 0x30);
    const body = archive.subarray(at + BLOCK, at + BLOCK + size);
    if (body.length < size) throw new Error('tar stream is truncated');
    at += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'L') {
      longName = body.toString('utf8').replace(/\0+$/, '');
      continue;
    }
    const prefix = field(header, 345, 155);
    const name = longName ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
    longName = null;
    if (type !== '0' && type !== '\0') continue;
    entries.push({ path: name.startsWith('/') ? name : `/${name}`, mode: octal(header, 100, 8) & 0o7777, content: Buffer.from(body) });
  }
  return entries;
}

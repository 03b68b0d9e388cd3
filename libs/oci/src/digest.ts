import { createHash, type Hash } from 'node:crypto';
import { Transform } from 'node:stream';

/** A content digest, `<algorithm>:<hex>`. We write only sha256. */
export type Digest = `${string}:${string}`;

const DIGEST_PATTERN = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;
const HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

export class DigestError extends Error {
  override name = 'DigestError';
}

export interface ParsedDigest {
  algorithm: string;
  hex: string;
}

/** Parse and validate a digest string; throws DigestError naming the bad value. */
export function parseDigest(value: string): ParsedDigest {
  const match = DIGEST_PATTERN.exec(value);
  if (!match) throw new DigestError(`invalid digest ${JSON.stringify(value)}`);
  const algorithm = match[1]!;
  const hex = match[2]!;
  const expected = HEX_LENGTH[algorithm];
  if (expected === undefined) throw new DigestError(`unsupported digest algorithm ${JSON.stringify(algorithm)} in ${value}`);
  if (hex.length !== expected || !/^[a-f0-9]+$/.test(hex)) {
    throw new DigestError(`invalid ${algorithm} digest ${JSON.stringify(value)}: expected ${expected} lowercase hex characters`);
  }
  return { algorithm, hex };
}

export function isDigest(value: string): value is Digest {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

export function sha256(data: string | Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** A running hash for streams; `digest()` may be called once. */
export function digester(algorithm = 'sha256'): { hash: Hash; digest(): Digest } {
  const hash = createHash(algorithm);
  return { hash, digest: () => `${algorithm}:${hash.digest('hex')}` };
}

/**
 * A pass-through stream that hashes and counts the bytes going through it; at the end
 * `onEnd` gets the hex digest and the size (an error it throws fails the stream).
 */
export function hashingStream(algorithm: string, onEnd: (hex: string, size: number) => void): Transform {
  const hash = createHash(algorithm);
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
    flush(callback) {
      try {
        onEnd(hash.digest('hex'), size);
        callback();
      } catch (error) {
        callback(error as Error);
      }
    },
  });
}

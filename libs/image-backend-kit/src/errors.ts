/** Errors of image-producing backends: a chain of actions with a cause. */
export class ImageBackendError extends Error {
  override name = 'ImageBackendError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * buildah's history texts without its build metadata. buildah 1.3x and later
 * append to `created_by` what else decides whether a cached layer can be reused
 * (`|force-mtime=1700000000` with `--timestamp`, `|inheritLabels=false`, …):
 * `/bin/sh -c #(nop) WORKDIR /x|force-mtime=1700000000`. The texts name each new
 * layer by its Dockerfile line (a WORKDIR's `#(nop)` text is the line as
 * written), so they are read without it; 1.28 appends nothing.
 */
import type { BuiltImage } from '@cnb-extender/image-backend-kit';

/** The keys buildah writes (imagebuildah's `buildMetadata`), each `|key=value`, at the end of the text. */
const METADATA = /(?:\s*\|(?:unsetLabel|inheritLabels|unsetAnnotation|inheritAnnotations|force-mtime|clamp-mtime)=[^|\s]*)+\s*$/;

/** `/bin/sh -c #(nop) WORKDIR /x|force-mtime=1` → `/bin/sh -c #(nop) WORKDIR /x`. */
export function stripBuildMetadata(createdBy: string): string {
  return createdBy.replace(METADATA, '');
}

/** The built image with its history texts stripped of build metadata. */
export function withoutBuildMetadata(built: BuiltImage): BuiltImage {
  const history = built.config.history;
  if (!history?.some((h) => h.created_by !== undefined && METADATA.test(h.created_by))) return built;
  return {
    ...built,
    config: { ...built.config, history: history.map((h) => (h.created_by === undefined ? h : { ...h, created_by: stripBuildMetadata(h.created_by) })) },
  };
}

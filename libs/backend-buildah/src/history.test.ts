import { describe, expect, it } from 'vitest';
import { stripBuildMetadata, withoutBuildMetadata } from './history.ts';

describe("buildah's history texts", () => {
  it('lose the build metadata buildah 1.3x and later append', () => {
    // as buildah 1.43 writes them with --timestamp 1700000000
    expect(stripBuildMetadata('/bin/sh -c #(nop) workdir   sub|force-mtime=1700000000')).toBe('/bin/sh -c #(nop) workdir   sub');
    expect(stripBuildMetadata('/bin/sh -c echo hi > hi|force-mtime=1700000000')).toBe('/bin/sh -c echo hi > hi');
    expect(stripBuildMetadata('/bin/sh -c #(nop) COPY file:0123abcd in /opt/app/ctx.txt  |force-mtime=1700000000 ')).toBe('/bin/sh -c #(nop) COPY file:0123abcd in /opt/app/ctx.txt');
    expect(stripBuildMetadata('/bin/sh -c #(nop) HEALTHCHECK NONE|unsetLabel=a.b|inheritLabels=false|clamp-mtime=10')).toBe('/bin/sh -c #(nop) HEALTHCHECK NONE');
  });

  it('are kept as they are otherwise (buildah 1.28, a pipe in a RUN)', () => {
    expect(stripBuildMetadata('/bin/sh -c #(nop) WORKDIR /wd')).toBe('/bin/sh -c #(nop) WORKDIR /wd');
    expect(stripBuildMetadata('|2 a=b c=d /bin/sh -c echo x | tee /y')).toBe('|2 a=b c=d /bin/sh -c echo x | tee /y');
    expect(stripBuildMetadata('/bin/sh -c echo force-mtime=1 |grep x=1')).toBe('/bin/sh -c echo force-mtime=1 |grep x=1');
  });

  it('are stripped in a built image, which is otherwise unchanged', () => {
    const built = {
      config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' as const, diff_ids: [] }, history: [{ created_by: 'base' }, { created_by: '/bin/sh -c #(nop) WORKDIR /x|force-mtime=1', empty_layer: true }, {}] },
      layers: [],
    };
    expect(withoutBuildMetadata(built).config.history).toEqual([{ created_by: 'base' }, { created_by: '/bin/sh -c #(nop) WORKDIR /x', empty_layer: true }, {}]);
    expect(built.config.history[1]!.created_by).toBe('/bin/sh -c #(nop) WORKDIR /x|force-mtime=1');
    const plain = { ...built, config: { ...built.config, history: [{ created_by: 'base' }] } };
    expect(withoutBuildMetadata(plain)).toBe(plain);
  });
});

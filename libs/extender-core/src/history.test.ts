import { describe, expect, it } from 'vitest';
import { envToMap, extensionLayerHistory, normalizedHistory } from './extend.ts';
import { REBASABLE_LABEL, recordExtension, startRecord } from './extension-record.ts';
import { buildArgsFor, escapeId, isRootUser, userFrom } from './discovery.ts';

describe('normalizedHistory', () => {
  it('gives empty entries, one per layer, when there is no history', () => {
    expect(normalizedHistory(undefined, 2)).toEqual([{}, {}]);
  });

  it('drops entries of empty layers and pads to the layer count', () => {
    const history = [{ created_by: 'a' }, { created_by: 'env', empty_layer: true }, { created_by: 'b' }];
    expect(normalizedHistory(history, 3)).toEqual([{ created_by: 'a' }, { created_by: 'b' }, {}]);
  });
});

describe('extensionLayerHistory', () => {
  it("reads `Layer: '<instruction>', Created by extension: <id>`", () => {
    expect(extensionLayerHistory('RUN apt-get update && apt-get install -y curl', 'samples/curl')).toBe(
      "Layer: 'RUN apt-get update && apt-get install -y curl', Created by extension: samples/curl",
    );
    expect(extensionLayerHistory(undefined, 'x')).toBe("Layer: '', Created by extension: x");
  });
});

describe('userFrom / isRootUser', () => {
  it('splits on ":" like the lifecycle', () => {
    expect(userFrom('1234:1000')).toEqual({ userId: '1234', groupId: '1000' });
    expect(userFrom('cnb')).toEqual({ userId: 'cnb', groupId: '' });
    expect(userFrom('')).toEqual({ userId: '', groupId: '' });
    expect(userFrom(undefined)).toEqual({ userId: '', groupId: '' });
  });

  it('treats 0 and root as root only', () => {
    expect([isRootUser('0'), isRootUser('root'), isRootUser('1000'), isRootUser('')]).toEqual([true, true, false, false]);
  });
});

describe('buildArgsFor', () => {
  it('orders build_id, user_id, group_id, config args, base_image', () => {
    expect(buildArgsFor([{ name: 'a', value: '1' }], '0:5678', 'img@sha256:x', 'id')).toEqual([
      { name: 'build_id', value: 'id' },
      { name: 'user_id', value: '0' },
      { name: 'group_id', value: '5678' },
      { name: 'a', value: '1' },
      { name: 'base_image', value: 'img@sha256:x' },
    ]);
  });
});

describe('escapeId / envToMap', () => {
  it('replaces every "/" with "_"', () => {
    expect(escapeId('samples/hello/ext')).toBe('samples_hello_ext');
  });

  it('splits Env on the first "="', () => {
    expect(envToMap(['A=1', 'B=x=y', 'C=', 'bad'])).toEqual({ A: '1', B: 'x=y', C: '' });
  });
});

describe('recordExtension', () => {
  const layer = (n: number) => ({ descriptor: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${String(n).padStart(64, '0')}`, size: n }, diffId: `sha256:${String(n).padStart(64, 'f')}` });
  const image = (layers: number, extra: { labels?: Record<string, string>; user?: string; history?: { created_by?: string; empty_layer?: boolean }[] } = {}) => ({
    manifestDigest: '',
    layers: Array.from({ length: layers }, (_, i) => layer(i + 1)),
    config: {
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers' as const, diff_ids: Array.from({ length: layers }, (_, i) => layer(i + 1).diffId) },
      config: { User: extra.user ?? '1000:1000', Labels: extra.labels ?? {} },
      ...(extra.history ? { history: extra.history } : {}),
    },
  });

  it('ANDs the rebasable label over every extension, names each new layer by its extension, and leaves its inputs alone', () => {
    const start = startRecord(image(1, { history: [{ created_by: 'base' }] }) as never);
    const first = recordExtension(start, image(2, { labels: { [REBASABLE_LABEL]: 'true' }, history: [{ created_by: 'base' }, { created_by: 'ENV A=1', empty_layer: true }, { created_by: 'RUN a' }] }) as never, 'ext/a', '/g/a/Dockerfile');
    expect(first.newLayers).toBe(1);
    expect(first.record.rebasable).toBe(true);
    expect(first.record.history).toEqual([{ created_by: 'base' }, { created_by: "Layer: 'RUN a', Created by extension: ext/a" }]);
    const second = recordExtension(first.record, image(3, { labels: {} }) as never, 'ext/b', '/g/b/Dockerfile');
    expect(second.record.rebasable).toBe(false);
    expect(second.record.image.config.config?.Labels?.[REBASABLE_LABEL]).toBe('false');
    expect(second.record.history.at(-1)).toEqual({ created_by: "Layer: '', Created by extension: ext/b" });
    expect(first.record.history).toHaveLength(2);
    expect(second.warnings).toEqual([]);
  });

  it('warns when an extension leaves the user root, naming both user IDs', () => {
    const recorded = recordExtension(startRecord(image(1) as never), image(1, { user: '0' }) as never, 'ext/root', '/g/root/Dockerfile');
    expect(recorded.record.userId).toBe('0');
    expect(recorded.warnings).toEqual([expect.objectContaining({ code: 'user-root', extensionId: 'ext/root', message: expect.stringContaining('from 1000 to 0') })]);
  });
});

import { describe, expect, it } from 'vitest';
import { envToMap, extensionLayerHistory, normalizedHistory } from './extend.ts';
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

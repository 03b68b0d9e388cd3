import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'smol-toml';
import { ExtenderError, renderError } from '../errors.ts';
import { escapeModuleId, moduleName, parseGroup, readGroup, stringifyGroup, verifyGroupExtensions, writeGroup } from './group.ts';
import { createApiList } from '../api/apis.ts';

const GROUP = `[[group]]
id = "some/buildpack"
version = "1.0.0"
api = "0.10"
homepage = "https://example.com/bp"
some-bp-key = "kept"

[[group]]
id = "optional-bp"
version = "2.0.0"
api = "0.9"
optional = true

[[group-extensions]]
id = "samples/curl"
version = "0.0.1"
api = "0.10"

[[group-extensions]]
id = "samples/tree"
version = "0.0.2"
api = "0.12"
homepage = "https://example.com/tree"
  [group-extensions.some-table]
  x = 1
`;

describe('group.toml', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'platform-group-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads buildpacks and extensions in order; extensions are optional extensions', () => {
    const g = parseGroup(GROUP);
    expect(g.group.map(moduleName)).toEqual(['some/buildpack@1.0.0', 'optional-bp@2.0.0']);
    expect(g.group[0]).toEqual({
      id: 'some/buildpack',
      version: '1.0.0',
      api: '0.10',
      homepage: 'https://example.com/bp',
      extra: { 'some-bp-key': 'kept' },
    });
    expect(g.group[1]?.optional).toBe(true);
    expect(g.groupExtensions.map((e) => [e.id, e.api, e.extension, e.optional])).toEqual([
      ['samples/curl', '0.10', true, true],
      ['samples/tree', '0.12', true, true],
    ]);
    expect(escapeModuleId('samples/curl')).toBe('samples_curl');
  });

  it('round-trips keeping unknown keys and not writing extension/optional for extensions', async () => {
    const path = join(dir, 'group.toml');
    await writeFile(path, GROUP);
    await writeGroup(path, await readGroup(path));
    const text = await readFile(path, 'utf8');
    expect(parse(text, { integersAsBigInt: true })).toEqual(parse(GROUP, { integersAsBigInt: true }));
    expect(text).not.toContain('extension = true');
  });

  it('writes a group without extensions without an empty [[group-extensions]]', () => {
    const text = stringifyGroup({ group: [{ id: 'a', version: '1', api: '0.10' }], groupExtensions: [] });
    expect(text).not.toContain('group-extensions');
    expect(parseGroup(text).group).toEqual([{ id: 'a', version: '1', api: '0.10' }]);
  });

  it('names the key of an element without id', () => {
    expect(() => parseGroup('[[group-extensions]]\nid = "a"\n[[group-extensions]]\nversion = "1"\n', '/layers/group.toml')).toThrow(
      'reading group file /layers/group.toml: key group-extensions[1].id: missing required key',
    );
    expect(() => parseGroup('group = "x"\n', '/g.toml')).toThrow('key group: expected an array of tables, got a string');
    expect(() => parseGroup('[[group]]\nid = "a"\noptional = "yes"\n', '/g.toml')).toThrow('key group[0].optional: expected a boolean');
  });

  describe('#verifyGroupExtensions', () => {
    it('accepts supported extension APIs', () => {
      expect(verifyGroupExtensions(parseGroup(GROUP))).toEqual([]);
    });

    it('fails (EXTENSION_API_UNSUPPORTED) naming the first extension with an unsupported API', () => {
      const g = parseGroup('[[group-extensions]]\nid = "samples/curl"\nversion = "0.0.1"\napi = "0.3"\n');
      let err: unknown;
      try {
        verifyGroupExtensions(g);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ExtenderError);
      expect((err as ExtenderError).code).toBe('EXTENSION_API_UNSUPPORTED');
      expect(renderError(err)).toBe(
        "ERROR: failed to set API for Extension 'samples/curl@0.0.1': buildpack API version '0.3' is incompatible with the lifecycle\n",
      );
    });

    it('exits 12 for an extension without api', () => {
      const g = parseGroup('[[group-extensions]]\nid = "e"\nversion = "1"\n');
      expect(() => verifyGroupExtensions(g)).toThrow("failed to parse buildpack API '' for extension 'e@1'");
    });

    it('returns deprecation notices', () => {
      const apis = createApiList(['0.9', '0.10'], ['0.9']);
      const g = parseGroup('[[group-extensions]]\nid = "e"\nversion = "1"\napi = "0.9"\n');
      expect(verifyGroupExtensions(g, { apis })).toEqual([{ level: 'warn', message: "Extension 'e@1' requests deprecated API '0.9'" }]);
    });
  });
});

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'smol-toml';
import { emptyExtendConfig, extendArgsFor, parseExtendConfig, readExtendConfig, stringifyExtendConfig, writeExtendConfig } from './extend-config.ts';
import { ifExists } from './toml.ts';

const CONFIG = `[[build.args]]
name = "some_arg"
value = "some-value"

[[build.args]]
name = "empty_arg"

[[run.args]]
name = "other_arg"
value = "x"
note = "kept"
`;

describe('extend-config.toml', () => {
  it('reads build and run args in order', () => {
    const c = parseExtendConfig(CONFIG);
    expect(extendArgsFor(c, 'build')).toEqual([
      { name: 'some_arg', value: 'some-value' },
      { name: 'empty_arg', value: '' },
    ]);
    expect(extendArgsFor(c, 'run')).toEqual([{ name: 'other_arg', value: 'x' }]);
    expect(c.run.args[0]?.extra).toEqual({ note: 'kept' });
  });

  it('an empty file means no args', () => {
    expect(parseExtendConfig('')).toEqual(emptyExtendConfig());
  });

  it.each(['build_id', 'user_id', 'group_id'])('rejects the reserved arg %s naming file and key', (name) => {
    expect(() => parseExtendConfig(`[[run.args]]\nname = "ok"\n[[run.args]]\nname = "${name}"\nvalue = "1"\n`, '/g/ext/extend-config.toml')).toThrow(
      `reading extend config /g/ext/extend-config.toml: key run.args[1].name: arg with name "${name}" is not allowed`,
    );
  });

  it('names the key of a bad value', () => {
    expect(() => parseExtendConfig('[[build.args]]\nname = "a"\nvalue = 3\n', '/e.toml')).toThrow('key build.args[0].value: expected a string, got an integer');
    expect(() => parseExtendConfig('[[build.args]]\nvalue = "v"\n', '/e.toml')).toThrow('key build.args[0].name: missing required key');
  });

  it('round-trips unknown keys; a missing file reads as undefined through ifExists', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'platform-extend-config-'));
    try {
      const path = join(dir, 'extend-config.toml');
      await writeFile(path, CONFIG + '\n[other]\nkeep = true\n');
      const c = await readExtendConfig(path);
      await writeExtendConfig(path, c);
      // the one change: an arg without value is written with value = ""
      const expected = CONFIG.replace('name = "empty_arg"\n', 'name = "empty_arg"\nvalue = ""\n') + '\n[other]\nkeep = true\n';
      expect(parse(stringifyExtendConfig(await readExtendConfig(path)))).toEqual(parse(expected));
      expect(await ifExists(readExtendConfig(join(dir, 'missing.toml')))).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

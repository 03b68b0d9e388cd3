import { describe, expect, it } from 'vitest';
import { BackendSelectionError } from './errors.ts';
import { parseBackendSettings, parseCacheEntry, settingsTable, type SettingsOwner } from './settings.ts';

const OWNER: SettingsOwner = {
  id: 'builder',
  settings: [
    { name: 'address', option: 'address', kind: 'string', description: 'where' },
    { name: 'tls-dir', option: 'tlsDir', kind: 'path', description: 'certificates' },
    { name: 'no-cache', option: 'noCache', kind: 'bool', description: 'no cache' },
    { name: 'jobs', option: 'jobs', kind: 'int', description: 'parallel jobs' },
    { name: 'mode', option: 'mode', kind: 'choice', choices: ['fast', 'safe'], description: 'how' },
    { name: 'cache-to', option: 'cacheExports', kind: 'cache', repeatable: true, description: 'cache exports' },
  ],
};
const OTHER: SettingsOwner = { id: 'other', settings: [{ name: 'isolation', option: 'isolation', kind: 'string', description: 'isolation' }] };

function refusal(entries: string[], source?: string): BackendSelectionError {
  try {
    parseBackendSettings(OWNER, entries, [OWNER, OTHER], { cwd: '/cwd', ...(source ? { source } : {}) });
  } catch (err) {
    expect(err).toBeInstanceOf(BackendSelectionError);
    return err as BackendSelectionError;
  }
  throw new Error('expected a BackendSelectionError');
}

describe('#parseBackendSettings', () => {
  it('turns name=value entries into the options the table names, by kind', () => {
    expect(
      parseBackendSettings(OWNER, ['address=tcp://127.0.0.1:1234?x=1', 'tls-dir=certs', 'no-cache', 'jobs=0x10', 'mode=safe', 'cache-to=type=local', 'cache-to=type=registry,ref=r.example/c,mode=max'], [], { cwd: '/cwd' }),
    ).toEqual({
      address: 'tcp://127.0.0.1:1234?x=1',
      tlsDir: '/cwd/certs',
      noCache: true,
      jobs: 16,
      mode: 'safe',
      cacheExports: [
        { type: 'local', attrs: {} },
        { type: 'registry', attrs: { ref: 'r.example/c', mode: 'max' } },
      ],
    });
    expect(parseBackendSettings(OWNER, ['no-cache=false'])).toEqual({ noCache: false });
    expect(parseBackendSettings(OWNER, [])).toEqual({});
  });

  it.each([
    [['colour=red'], '-backend-opt colour=red: the builder backend has no setting "colour" (its settings: address, tls-dir, no-cache, jobs, mode, cache-to)'],
    [['isolation=chroot'], '-backend-opt isolation=chroot: isolation is a setting of the other backend, not of builder (its settings: address, tls-dir, no-cache, jobs, mode, cache-to)'],
    [['address'], '-backend-opt address: expected address=<value>'],
    [['=x'], '-backend-opt =x: expected name=value'],
    [['address='], '-backend-opt address=: expected a value'],
    [['no-cache=yes'], '-backend-opt no-cache=yes: expected true or false'],
    [['jobs=many'], '-backend-opt jobs=many: expected an integer'],
    [['mode=Fast'], '-backend-opt mode=Fast: expected one of fast, safe'],
    [['mode=fast', 'mode=safe'], '-backend-opt mode=safe: mode is given more than once'],
    [['cache-to=local'], '-backend-opt cache-to=local: "local" is not key=value; expected type=<type>[,key=value…] (e.g. type=registry,ref=registry.example/cache,mode=max or type=local,dest=/cache)'],
    [['cache-to=ref=r.example/c'], '-backend-opt cache-to=ref=r.example/c: expected type=<type> (registry, local, inline, …) among the fields'],
    [['cache-to=type=registry,mode=max'], '-backend-opt cache-to=type=registry,mode=max: a registry cache needs ref=<repository>'],
    [['cache-to=type=local,dest=/a,dest=/b'], '-backend-opt cache-to=type=local,dest=/a,dest=/b: dest is given twice'],
  ])('%j is refused with exit 3: %s', (entries, message) => {
    const err = refusal(entries);
    expect(err.message).toBe(`failed to select backend: ${message}`);
    expect(err.code).toBe('BACKEND_SELECTION_FAILED');
    expect(err.reason).toBe('setting');
    expect(err.backendId).toBe('builder');
  });

  it('names where the entries came from', () => {
    expect(refusal(['jobs=x'], 'CNB_EXTEND_BACKEND_OPTS').message).toBe('failed to select backend: CNB_EXTEND_BACKEND_OPTS jobs=x: expected an integer');
  });

  it('says when a backend has no settings at all', () => {
    expect(() => parseBackendSettings({ id: 'bare' }, ['x=1'])).toThrow('failed to select backend: -backend-opt x=1: the bare backend has no setting "x" (it has none)');
  });
});

describe('#parseCacheEntry', () => {
  it('reads BuildKit\'s CSV form, keeping everything after the first = of each field', () => {
    expect(parseCacheEntry('type=registry,ref=r.example/c:tag,mode=max,image-manifest=true')).toEqual({ type: 'registry', attrs: { ref: 'r.example/c:tag', mode: 'max', 'image-manifest': 'true' } });
    expect(parseCacheEntry('type=local,src=/a=b')).toEqual({ type: 'local', attrs: { src: '/a=b' } });
    expect(parseCacheEntry('type=inline')).toEqual({ type: 'inline', attrs: {} });
  });
});

describe('#settingsTable', () => {
  it('lists each setting with its values and whether it repeats', () => {
    const rows = settingsTable(OWNER);
    expect(rows.slice(0, 2)).toEqual(['| setting | value | description |', '|---|---|---|']);
    expect(rows).toContain('| `mode` | `fast` \\| `safe` | how |');
    expect(rows).toContain('| `cache-to` (repeatable) | BuildKit cache entry | cache exports |');
    expect(settingsTable({ id: 'bare' })).toEqual(['(none)']);
  });
});

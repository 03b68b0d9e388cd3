import { describe, expect, it } from 'vitest';
import { definedCapabilities, requiredPrivileges, type BackendDefinition } from './backend-definition.ts';

const definition: BackendDefinition = {
  id: 'test',
  description: 'a backend that needs more without the network',
  kinds: ['run'],
  inPlace: true,
  privileges: { root: true, capabilities: ['SETUID', 'SYS_CHROOT'], container: true },
  networkCapabilities: { none: ['SYS_ADMIN', 'SETUID'] },
  settings: [],
  networks: { default: 'd', none: 'n', host: 'h' },
  create: () => Promise.reject(new Error('not used')),
};

describe('#requiredPrivileges', () => {
  it('adds the capabilities a network asks for, once each', () => {
    expect(requiredPrivileges(definition, 'none')).toEqual({ root: true, capabilities: ['SETUID', 'SYS_CHROOT', 'SYS_ADMIN'], container: true });
  });

  it('is the declared privileges for the default network and for networks that ask for nothing', () => {
    expect(requiredPrivileges(definition)).toBe(definition.privileges);
    expect(requiredPrivileges(definition, 'host')).toBe(definition.privileges);
  });
});

describe('#definedCapabilities', () => {
  it('takes kinds, inPlace and privileges from the definition and the cache from the instance', () => {
    expect(definedCapabilities(definition, { cache: true, network: 'none' })).toEqual({
      inPlace: true,
      kinds: ['run'],
      cache: true,
      privileges: { root: true, capabilities: ['SETUID', 'SYS_CHROOT', 'SYS_ADMIN'], container: true },
    });
    expect(definedCapabilities(definition, { cache: false }).privileges).toBe(definition.privileges);
  });
});

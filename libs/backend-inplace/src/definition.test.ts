import { describe, expect, it, vi } from 'vitest';
import { inplaceDefinition } from './definition.ts';

// what `create` hands the implementation, without loading it
const { created } = vi.hoisted(() => ({ created: [] as Record<string, unknown>[] }));
vi.mock('./backend.ts', () => ({ createInplaceBackend: (options: Record<string, unknown>) => (created.push(options), { id: 'inplace' }) }));

async function handed(options: Omit<Parameters<typeof inplaceDefinition.create>[0], 'env'>): Promise<Record<string, unknown>> {
  await inplaceDefinition.create({ env: {}, ...options });
  return created.at(-1)!;
}

describe('the in-place definition', () => {
  it('gives RUN the network for default and host, none for none, and leaves it to the backend when not given', async () => {
    expect(await handed({ network: 'default' })).toEqual({ network: true });
    expect(await handed({ network: 'host' })).toEqual({ network: true });
    expect(await handed({ network: 'none' })).toEqual({ network: false });
    expect(await handed({})).not.toHaveProperty('network');
  });

  it('hands -extend-layer-compression to the backend as its compression, and only when given', async () => {
    expect((await handed({ layerCompression: 'zstd' }))['compression']).toBe('zstd');
    expect((await handed({ layerCompression: 'gzip' }))['compression']).toBe('gzip');
    expect(await handed({})).not.toHaveProperty('compression');
  });

  it('hands the settings over as the options they name', async () => {
    expect(await handed({ settings: { cache: false, allowRemote: true } })).toEqual({ cache: false, allowRemote: true });
  });

  it('needs SYS_ADMIN on top of its privileges only for a RUN without the network', () => {
    expect(inplaceDefinition.networkCapabilities).toEqual({ none: ['SYS_ADMIN'] });
    expect(inplaceDefinition.privileges).toEqual({ root: true, capabilities: ['SETUID', 'SETGID', 'SYS_CHROOT'], container: true });
  });

  it('is detected as root inside a container, and says what it needs otherwise', async () => {
    const root = process.getuid?.() === 0;
    const inside = await inplaceDefinition.detect!({ CNB_EXTEND_IN_CONTAINER: 'true' });
    const outside = await inplaceDefinition.detect!({ CNB_EXTEND_IN_CONTAINER: 'false' });
    if (root) {
      expect(inside).toEqual({ usable: true, reason: 'running as root in a container (CNB_EXTEND_IN_CONTAINER=true); its root filesystem is the image to extend' });
      expect(outside).toEqual({ usable: false, reason: 'not in a container (CNB_EXTEND_IN_CONTAINER=false)', needs: 'root inside a container (not in a container (CNB_EXTEND_IN_CONTAINER=false))' });
    } else {
      for (const found of [inside, outside]) expect(found).toEqual({ usable: false, reason: 'not running as root', needs: 'root inside a container (not running as root)' });
    }
  });
});

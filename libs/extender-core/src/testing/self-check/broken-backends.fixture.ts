/**
 * Backends that each break one obligation, run through the contract kit by
 * `../contract.test.ts` in a separate vitest process: the kit must fail exactly
 * the check that covers the broken obligation. The base image comes from the
 * environment (CONTRACT_BASE_LAYOUT, CONTRACT_BASE_DIGEST, CONTRACT_BASE_REF).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from '@cnb-extender/oci';
import type { ApplyOptions, BackendContext, DockerfileSpec, ImageDescription } from '../../backend.ts';
import type { ExtenderEvent } from '../../events.ts';
import { readLayoutImage } from '../../base.ts';
import { runBackendContract } from '../contract.ts';
import { FakeBackend } from '../fake-backend.ts';

const layout = process.env['CONTRACT_BASE_LAYOUT'] ?? '';
const digest = (process.env['CONTRACT_BASE_DIGEST'] ?? '') as Digest;
const reference = process.env['CONTRACT_BASE_REF'] ?? '';
const baseImage = async (): Promise<ImageDescription> => (await readLayoutImage(layout, reference, digest)).image;

class IgnoresIgnorePaths extends FakeBackend {
  override apply(d: DockerfileSpec, b: ImageDescription, o: ApplyOptions, c: BackendContext) {
    return super.apply(d, b, { ...o, ignorePaths: [] }, c);
  }
}
class DropsArgs extends FakeBackend {
  override apply(d: DockerfileSpec, b: ImageDescription, o: ApplyOptions, c: BackendContext) {
    return super.apply({ ...d, args: d.args.filter((a) => a.name === 'base_image') }, b, o, c);
  }
}
class LosesInstruction extends FakeBackend {
  override async apply(d: DockerfileSpec, b: ImageDescription, o: ApplyOptions, c: BackendContext) {
    try {
      return await super.apply(d, b, o, c);
    } catch {
      throw new Error('something failed');
    }
  }
}
class ReordersLayers extends FakeBackend {
  override async apply(d: DockerfileSpec, b: ImageDescription, o: ApplyOptions, c: BackendContext) {
    const result = await super.apply(d, b, o, c);
    const added = result.layers.slice(b.layers.length).reverse();
    const layers = [...b.layers, ...added];
    return { ...result, layers, config: { ...result.config, rootfs: { type: 'layers' as const, diff_ids: layers.map((l) => l.diffId) } } };
  }
}
class ForgetsConfig extends FakeBackend {
  override async apply(d: DockerfileSpec, b: ImageDescription, o: ApplyOptions, c: BackendContext) {
    const result = await super.apply(d, b, o, c);
    return { ...result, config: { ...result.config, config: b.config.config ?? {} } };
  }
}
class LeavesFiles extends FakeBackend {
  override async cleanup(c: BackendContext) {
    await super.cleanup(c);
    await writeFile(join(c.workDir, 'left-behind'), 'x');
  }
}
/** Counts instructions from the first line (ARG, FROM included), as the docker backend once did. */
class MisnumbersInstructions extends FakeBackend {
  override apply(d: DockerfileSpec, b: ImageDescription, o: ApplyOptions, c: BackendContext) {
    const events = { emit: (e: ExtenderEvent) => c.events.emit('index' in e ? { ...e, index: e.index + 2 } : e) };
    return super.apply(d, b, o, { ...c, events });
  }
}
class IgnoresContext extends FakeBackend {
  override apply(d: DockerfileSpec, b: ImageDescription, o: ApplyOptions, c: BackendContext) {
    return super.apply(d, b, { ...o, buildContext: join(o.buildContext, 'elsewhere') }, c);
  }
}

runBackendContract(() => new FakeBackend(), { name: 'control', baseImage });
runBackendContract(() => new IgnoresIgnorePaths(), { name: 'ignores-ignore-paths', baseImage });
runBackendContract(() => new DropsArgs(), { name: 'drops-args', baseImage });
runBackendContract(() => new LosesInstruction(), { name: 'loses-instruction', baseImage });
runBackendContract(() => new ReordersLayers(), { name: 'reorders-layers', baseImage });
runBackendContract(() => new ForgetsConfig(), { name: 'forgets-config', baseImage });
runBackendContract(() => new LeavesFiles(), { name: 'leaves-files', baseImage });
runBackendContract(() => new IgnoresContext(), { name: 'ignores-context', baseImage });
runBackendContract(() => new MisnumbersInstructions(), { name: 'misnumbers-instructions', baseImage });


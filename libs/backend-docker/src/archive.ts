/**
 * Tars exchanged with the daemon: the build context (with the Dockerfile under
 * a name `.dockerignore` hides from COPY), the base image as a docker-archive for
 * `/images/load` (layers the daemon has left out), and the built image read back from `/images/{name}/get`.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, readFile, readdir, readlink, symlink } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import type { BuiltImage } from '@cnb-extender/image-backend-kit';
import type { Digest, ImageConfig } from '@cnb-extender/oci';
import { isExcluded, parseDockerignore } from './dockerignore.ts';

type Header = Partial<tar.Header> & { name: string };

function writeEntry(pack: tar.Pack, header: Header, body?: Buffer | Readable): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    if (body === undefined || Buffer.isBuffer(body)) {
      pack.entry(header, body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolvePromise()));
      return;
    }
    const entry = pack.entry(header, (err) => (err ? reject(err) : resolvePromise()));
    body.on('error', reject);
    body.pipe(entry as unknown as NodeJS.WritableStream);
  });
}

async function* walk(dir: string): AsyncGenerator<string> {
  const names = (await readdir(dir)).sort();
  for (const name of names) {
    const path = join(dir, name);
    yield path;
    const st = await lstat(path);
    if (st.isDirectory()) yield* walk(path);
  }
}

/**
 * The build context as a tar: every file of `contextDir` (owners 0:0 as the docker
 * CLI sends them), plus the Dockerfile as `dockerfileName` and a `.dockerignore`
 * (the context's own, if any, with both names added) so that COPY never sees them.
 * The context's `.dockerignore` is applied here, as the docker CLI does: the
 * daemon itself only hides the Dockerfile and `.dockerignore`.
 */
export function contextTar(contextDir: string, dockerfileName: string, dockerfile: string): Readable {
  const pack = tar.pack();
  (async () => {
    let ignore = '';
    try {
      ignore = await readFile(join(contextDir, '.dockerignore'), 'utf8');
    } catch {
      // none
    }
    const rules = parseDockerignore(ignore);
    for await (const path of walk(contextDir)) {
      const name = relative(contextDir, path).split(sep).join('/');
      if (name === '.dockerignore' || name === dockerfileName) continue;
      // an excluded directory may still hold re-included entries (`!dir/keep`): walk on
      const st = await lstat(path);
      if (isExcluded(name, rules) && !st.isDirectory()) continue;
      const base = { name, mode: st.mode & 0o7777, mtime: st.mtime, uid: 0, gid: 0 };
      if (st.isDirectory()) {
        if (!isExcluded(name, rules)) await writeEntry(pack, { ...base, type: 'directory' });
      } else if (st.isSymbolicLink()) await writeEntry(pack, { ...base, type: 'symlink', linkname: await readlink(path) });
      else if (st.isFile()) await writeEntry(pack, { ...base, type: 'file', size: st.size }, createReadStream(path));
    }
    const ignored = `${ignore}${ignore.endsWith('\n') || ignore === '' ? '' : '\n'}${dockerfileName}\n.dockerignore\n`;
    await writeEntry(pack, { name: '.dockerignore', mode: 0o644, uid: 0, gid: 0, mtime: new Date(0) }, Buffer.from(ignored));
    await writeEntry(pack, { name: dockerfileName, mode: 0o644, uid: 0, gid: 0, mtime: new Date(0) }, Buffer.from(dockerfile));
    pack.finalize();
  })().catch((err: unknown) => pack.destroy(err as Error));
  return Readable.from(pack as AsyncIterable<Buffer>);
}

/** One layer of a docker-archive: its blob file, or none when the daemon already has it. */
export interface ArchiveLayer {
  digest: string;
  size: number;
  /** Absent: an empty entry stands in (see `dockerArchive`). */
  file?: string;
}

/**
 * A docker-archive (`docker save` format) of one image, tagged `tag`. A layer
 * without a file is written as an empty entry: `/images/load` opens a layer's
 * file only when the daemon lacks the layer chain up to it, so the caller leaves
 * out exactly the layers the daemon is known to hold (if it does not after all,
 * the load fails on the empty entry's diff_id instead of building a wrong image).
 */
export function dockerArchive(configBytes: Buffer, configDigest: string, layers: readonly ArchiveLayer[], tag: string): Readable {
  const pack = tar.pack();
  (async () => {
    const configName = `${configDigest.split(':')[1]}.json`;
    const names = layers.map((l) => `${l.digest.split(':')[1]}/layer.tar`);
    const mtime = new Date(0);
    await writeEntry(pack, { name: configName, mode: 0o644, mtime }, configBytes);
    for (const [i, layer] of layers.entries()) {
      if (layer.file === undefined) await writeEntry(pack, { name: names[i]!, mode: 0o644, mtime, type: 'file' }, Buffer.alloc(0));
      else await writeEntry(pack, { name: names[i]!, mode: 0o644, mtime, size: layer.size, type: 'file' }, createReadStream(layer.file));
    }
    await writeEntry(pack, { name: 'manifest.json', mode: 0o644, mtime }, Buffer.from(JSON.stringify([{ Config: configName, RepoTags: [tag], Layers: names }])));
    pack.finalize();
  })().catch((err: unknown) => pack.destroy(err as Error));
  return Readable.from(pack as AsyncIterable<Buffer>);
}

/** Unpack a docker-archive (from `/images/{name}/get`) into `dir` and describe its image. */
export async function readDockerArchive(archive: NodeJS.ReadableStream, dir: string): Promise<BuiltImage> {
  await mkdir(dir, { recursive: true });
  const root = resolve(dir);
  const extract = tar.extract();
  const source = Readable.from(archive as AsyncIterable<Buffer>);
  let feedError: unknown;
  source.on('error', (err) => {
    feedError = err;
    extract.destroy(err);
  });
  source.pipe(extract as unknown as NodeJS.WritableStream);
  for await (const entry of extract) {
    const header = entry.header;
    const target = resolve(root, header.name);
    if (target !== root && !target.startsWith(`${root}${sep}`)) throw new Error(`docker-archive entry ${header.name} points outside the archive`);
    if (header.type === 'directory') {
      await mkdir(target, { recursive: true });
      entry.resume();
    } else if (header.type === 'symlink') {
      await mkdir(dirname(target), { recursive: true });
      await symlink(header.linkname, target);
      entry.resume();
    } else if (header.type === 'file') {
      await mkdir(dirname(target), { recursive: true });
      await pipeline(entry as unknown as Readable, createWriteStream(target));
    } else {
      entry.resume();
    }
  }
  if (feedError) throw feedError;
  const manifests = JSON.parse(await readFile(join(root, 'manifest.json'), 'utf8')) as { Config: string; Layers: string[] }[];
  const entry = manifests[0];
  if (!entry) throw new Error('docker-archive has no image in manifest.json');
  const config = JSON.parse(await readFile(join(root, entry.Config), 'utf8')) as ImageConfig;
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== entry.Layers.length) throw new Error(`docker-archive lists ${entry.Layers.length} layers but its config has ${diffIds.length} diff_ids`);
  return {
    config,
    layers: entry.Layers.map((name, i) => {
      const path = resolve(root, name);
      if (!path.startsWith(`${root}${sep}`)) throw new Error(`docker-archive layer ${name} points outside the archive`);
      return { diffId: diffIds[i]! as Digest, open: () => createReadStream(path) };
    }),
  };
}

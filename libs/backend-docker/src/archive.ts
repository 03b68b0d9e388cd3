/**
 * The build context sent to the daemon as a tar (with the Dockerfile under a
 * name `.dockerignore` hides from COPY). The image archives exchanged with the
 * daemon (`/images/load`, `/images/{name}/get`) are image-backend-kit's.
 */
import { createReadStream } from 'node:fs';
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
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
 * (the context's own with the Dockerfile's name added, else one naming both) so that
 * COPY never sees the Dockerfile. Used for the classic builder; BuildKit reads the
 * context through a session instead.
 * The context's `.dockerignore` is applied here, as the docker CLI does: the
 * daemon itself only hides the Dockerfile and `.dockerignore`.
 */
export function contextTar(contextDir: string, dockerfileName: string, dockerfile: string): Readable {
  const pack = tar.pack();
  (async () => {
    let ignore: string | undefined;
    try {
      ignore = await readFile(join(contextDir, '.dockerignore'), 'utf8');
    } catch {
      // none
    }
    const rules = parseDockerignore(ignore ?? '');
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
    // As with Docker, the context's own .dockerignore reaches COPY unless it excludes
    // itself; one we add only to hide the Dockerfile never does.
    const hideSelf = ignore === undefined || isExcluded('.dockerignore', rules);
    const ignored = `${ignore ?? ''}${ignore === undefined || ignore === '' || ignore.endsWith('\n') ? '' : '\n'}${dockerfileName}\n${hideSelf ? '.dockerignore\n' : ''}`;
    await writeEntry(pack, { name: '.dockerignore', mode: 0o644, uid: 0, gid: 0, mtime: new Date(0) }, Buffer.from(ignored));
    await writeEntry(pack, { name: dockerfileName, mode: 0o644, uid: 0, gid: 0, mtime: new Date(0) }, Buffer.from(dockerfile));
    pack.finalize();
  })().catch((err: unknown) => pack.destroy(err as Error));
  return Readable.from(pack as AsyncIterable<Buffer>);
}

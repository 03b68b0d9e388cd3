/**
 * The build context sent to the daemon as a tar (with the Dockerfile under a
 * name `.dockerignore` hides from COPY). The image archives exchanged with the
 * daemon (`/images/load`, `/images/{name}/get`) are image-backend-kit's.
 */
import { createReadStream } from 'node:fs';
import { readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { dockerignoreMatcher, walkContextTree, type DockerignoreFile } from '@cnb-extender/dockerfile';

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

/**
 * The build context as a tar: every file of `contextDir` (owners 0:0 as the docker
 * CLI sends them), plus the Dockerfile as `dockerfileName` and a `.dockerignore`
 * (the build's ignore patterns with the Dockerfile's name added, else one naming
 * both) so that COPY never sees the Dockerfile. Used for the classic builder;
 * BuildKit reads the context through a session instead.
 *
 * `ignore` (from `readDockerignore`: `<Dockerfile>.dockerignore`, else the
 * context's `.dockerignore`) is applied here as the Docker CLI applies it, with
 * the shared context patterns: an excluded directory is entered only for an
 * exception naming a path below it, and is not sent itself. The daemon itself
 * only hides the Dockerfile and `.dockerignore`. A malformed pattern throws here.
 */
export function contextTar(contextDir: string, dockerfileName: string, dockerfile: string, ignore: DockerignoreFile | undefined): Readable {
  const exclude = dockerignoreMatcher(ignore);
  const pack = tar.pack();
  (async () => {
    for await (const { path: name, abs, stat: st } of walkContextTree(contextDir, { exclude, rule: 'docker-cli' })) {
      if (name === '.dockerignore' || name === dockerfileName) continue;
      const base = { name, mode: Number(st.mode) & 0o7777, mtime: st.mtime, uid: 0, gid: 0 };
      if (st.isDirectory()) await writeEntry(pack, { ...base, type: 'directory' });
      else if (st.isSymbolicLink()) await writeEntry(pack, { ...base, type: 'symlink', linkname: await readlink(abs) });
      else if (st.isFile()) await writeEntry(pack, { ...base, type: 'file', size: Number(st.size) }, createReadStream(abs));
    }
    // As the Docker CLI does with a Dockerfile from outside the context (an extension's
    // always is): the Dockerfile's name is appended to the context's .dockerignore, which
    // reaches COPY with that line unless it excludes itself. Without one, the .dockerignore
    // written here names itself, and so does one standing in for <Dockerfile>.dockerignore
    // (a context tar holds one .dockerignore).
    const own = ignore !== undefined && ignore.path === join(contextDir, '.dockerignore');
    const text = own ? `${ignore.text}\n${dockerfileName}\n` : `${ignore === undefined ? '' : `${ignore.text}\n`}.dockerignore\n${dockerfileName}\n`;
    await writeEntry(pack, { name: '.dockerignore', mode: 0o644, uid: 0, gid: 0, mtime: new Date(0) }, Buffer.from(text));
    await writeEntry(pack, { name: dockerfileName, mode: 0o644, uid: 0, gid: 0, mtime: new Date(0) }, Buffer.from(dockerfile));
    pack.finalize();
  })().catch((err: unknown) => pack.destroy(err as Error));
  return Readable.from(pack as AsyncIterable<Buffer>);
}

/**
 * Getting an image layout into the loopback registry (skopeo, digest checked)
 * and from there into dockerd (docker pull, digest checked).
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { LayoutImage } from './fixtures.ts';
import { run } from './proc.ts';
import type { FixtureImage, TestEnv } from './types.ts';

/** Pushes `image` to `<registryHost>/<repository>:latest`; fails unless the registry has the layout's manifest digest. */
export async function pushLayout(image: LayoutImage, registryHost: string, repository: string, workDir: string): Promise<string> {
  const ref = `${registryHost}/${repository}`;
  await mkdir(workDir, { recursive: true });
  const digestFile = join(workDir, `${repository.replaceAll('/', '_')}-${process.pid}-${Date.now()}.digest`);
  try {
    await run('skopeo', [
      '--insecure-policy',
      'copy',
      '--quiet',
      '--preserve-digests',
      '--dest-tls-verify=false',
      '--digestfile', digestFile,
      `oci:${image.layoutDir}:${image.layoutTag}`,
      `docker://${ref}:latest`,
    ]);
    const pushed = (await readFile(digestFile, 'utf8')).trim();
    if (pushed !== image.manifestDigest) {
      throw new Error(`pushing ${image.layoutDir} to ${ref}:latest: the registry has manifest ${pushed}, the layout ${image.manifestDigest}`);
    }
  } finally {
    await rm(digestFile, { force: true });
  }
  return ref;
}

/** `docker pull` into the environment's dockerd; fails unless dockerd reports the expected digest. */
export async function pullIntoDocker(docker: TestEnv['docker'], ref: string, digest: string, dockerConfigDir: string): Promise<void> {
  await mkdir(dockerConfigDir, { recursive: true });
  // Our own client config: whatever credential helpers the user's ~/.docker names stay out of it.
  const env = { ...process.env, DOCKER_CONFIG: dockerConfigDir, DOCKER_HOST: docker.host };
  await run(docker.cli, ['-H', docker.host, 'pull', '--quiet', `${ref}:latest`], { env });
  const { stdout } = await run(docker.cli, ['-H', docker.host, 'image', 'inspect', '--format', '{{json .RepoDigests}}', `${ref}:latest`], { env });
  const repoDigests = JSON.parse(stdout) as string[];
  if (!repoDigests.includes(`${ref}@${digest}`)) {
    throw new Error(`pulling ${ref}:latest into dockerd: it reports ${repoDigests.join(', ') || 'no digest'}, expected ${digest}`);
  }
}

/** Pushes a layout to the plain registry as `<repository>` and pulls it into dockerd. */
export async function publishImage(
  image: LayoutImage,
  repository: string,
  target: { registryHost: string; docker: TestEnv['docker']; stateDir: string },
): Promise<FixtureImage> {
  const ref = await pushLayout(image, target.registryHost, repository, join(target.stateDir, 'work'));
  await pullIntoDocker(target.docker, ref, image.manifestDigest, join(target.stateDir, 'docker-config'));
  return { ...image, registryRef: `${ref}@${image.manifestDigest}`, dockerRef: `${ref}:latest` };
}

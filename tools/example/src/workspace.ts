import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The directories a platform mounts into the extender's container, laid out on disk. */
export interface ExampleWorkspace {
  root: string;
  layersDir: string;
  appDir: string;
  platformDir: string;
  extendDir: string;
}

/** Two example extensions, in the Platform API 0.13 layout (`<generated>/<id>/run.Dockerfile`). */
const EXTENSIONS = [
  {
    id: 'samples/curl',
    dir: 'samples_curl',
    dockerfile: [
      'ARG base_image',
      'FROM ${base_image}',
      'USER root',
      'RUN mkdir -p /usr/local/bin && printf \'#!/bin/sh\\necho "curl (example) $*"\\n\' > /usr/local/bin/curl && chmod 755 /usr/local/bin/curl',
      'ARG curl_version',
      'ENV CURL_VERSION=${curl_version}',
      'LABEL io.buildpacks.rebasable=true',
      // user_id/group_id describe the image before this Dockerfile: switch back to that user
      'ARG user_id',
      'ARG group_id',
      'USER ${user_id}:${group_id}',
      '',
    ].join('\n'),
    config: '[[run.args]]\nname = "curl_version"\nvalue = "8.10.1"\n',
    context: undefined,
  },
  {
    id: 'samples/tree',
    dir: 'samples_tree',
    dockerfile: [
      'ARG base_image',
      'FROM ${base_image}',
      'COPY tree.txt /usr/share/doc/tree/README',
      'USER root',
      'RUN rm -f /etc/cnb-fixture',
      'WORKDIR /home/cnb',
      'LABEL io.buildpacks.rebasable=true',
      'ARG user_id',
      'USER ${user_id}',
      '',
    ].join('\n'),
    config: undefined,
    context: { 'tree.txt': 'tree: list contents of directories in a tree-like format (example file)\n' },
  },
];

/**
 * Write what the analyzer, detector and restorer would have left for the extender:
 * analyzed.toml naming the run image by digest, group.toml with the extensions, and
 * their generated Dockerfiles. The extend dir stays empty: the extender resolves the
 * run image from the registry itself, without a restorer hand-off.
 */
export async function writeExampleWorkspace(root: string, runImageRef: string): Promise<ExampleWorkspace> {
  await rm(root, { recursive: true, force: true });
  const ws: ExampleWorkspace = {
    root,
    layersDir: join(root, 'layers'),
    appDir: join(root, 'workspace'),
    platformDir: join(root, 'platform'),
    extendDir: join(root, 'extend'),
  };
  for (const dir of [ws.layersDir, ws.appDir, ws.platformDir, ws.extendDir]) await mkdir(dir, { recursive: true });
  await writeFile(
    join(ws.layersDir, 'analyzed.toml'),
    `[run-image]\n  reference = "${runImageRef}"\n  image = "${runImageRef}"\n  extend = true\n\n  [run-image.target]\n    os = "linux"\n    arch = "amd64"\n`,
  );
  await writeFile(
    join(ws.layersDir, 'group.toml'),
    EXTENSIONS.map((e) => `[[group-extensions]]\n  id = "${e.id}"\n  version = "0.0.1"\n  api = "0.10"\n`).join('\n'),
  );
  for (const extension of EXTENSIONS) {
    const dir = join(ws.layersDir, 'generated', extension.dir);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'run.Dockerfile'), extension.dockerfile);
    if (extension.config) await writeFile(join(dir, 'extend-config.toml'), extension.config);
    if (extension.context) {
      await mkdir(join(dir, 'context.run'));
      for (const [name, text] of Object.entries(extension.context)) await writeFile(join(dir, 'context.run', name), text);
    }
  }
  return ws;
}

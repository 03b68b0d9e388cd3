// The README's "run the main job": extend the fixture run image with two example
// extensions using the extender, the way a platform runs the extend phase, and show
// where the result is and what changed.
//
//   npm run example   or   npx node tools/example/src/main.ts [output-dir]   (default: out/example)
//
// It installs and starts what it needs (a loopback registry, a private dockerd, the
// fixture images) through tools/testenv and stops it all again at the end.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OciLayout } from '@cnb-extender/oci';
import { startTestEnv, stopTestEnv } from '@cnb-extender/testenv';
import { formatReport, readExtendedRun } from './report.ts';
import { writeExampleWorkspace } from './workspace.ts';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const extenderMain = resolve(repoRoot, 'apps/extender/src/main.ts');
const outputDir = resolve(process.argv[2] ?? resolve(repoRoot, 'out/example'));

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function runExtender(env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [extenderMain, '-kind', 'run'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', fail);
    child.on('exit', (code, signal) => done(code ?? (signal ? 128 : 1)));
  });
}

// the example uses Debian 12's dockerd only; the current engines and buildkitd are for the tests
const handle = await startTestEnv({ engines: ['debian12'], buildkitd: false, log: (line) => process.stderr.write(`${line}\n`) });
let exitCode = 1;
try {
  const { env } = handle;
  say(`Run image to extend: ${env.fixtures.run.registryRef}`);
  const ws = await writeExampleWorkspace(outputDir, env.fixtures.run.registryRef);
  say(`Extension inputs: ${ws.layersDir}/{analyzed.toml,group.toml,generated/}`);
  say('Running: extender -kind run   (backend buildkit, on the private dockerd)\n');
  exitCode = await runExtender({
    ...process.env,
    CNB_PLATFORM_API: '0.13',
    CNB_LAYERS_DIR: ws.layersDir,
    CNB_APP_DIR: ws.appDir,
    CNB_PLATFORM_DIR: ws.platformDir,
    // empty: the run image is resolved from the registry by its digest reference
    CNB_EXTEND_DIR: ws.extendDir,
    CNB_EXTEND_BACKEND: 'buildkit',
    // the private dockerd has no bridge network, which a RUN gets by default; these RUNs need no network
    CNB_EXTEND_NETWORK: 'none',
    DOCKER_HOST: env.docker.host,
  });
  if (exitCode === 0) {
    const base = await (await OciLayout.open(env.fixtures.run.layoutDir)).image({ refName: env.fixtures.run.layoutTag });
    say(`\n${formatReport(await readExtendedRun(ws.layersDir, base.config))}`);
  } else {
    say(`\nThe extender failed with exit code ${exitCode}.`);
  }
} finally {
  await stopTestEnv(handle);
}
process.exit(exitCode);

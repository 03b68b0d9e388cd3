import type { TestEnv } from './types.ts';

/** Environment variable the global setup sets to the JSON of the TestEnv, for child processes. */
export const TESTENV_VARIABLE = 'CNB_TESTENV';

/** One line naming the Node version and the endpoints. */
export function describeEnv(env: TestEnv): string {
  return (
    `testenv: node ${env.nodeVersion}; registry ${env.registry.url}; ` +
    `secure registry ${env.secureRegistry.url} (TLS, basic auth); dockerd ${env.docker.host}; ` +
    `engines: ${env.engines.map((e) => `${e.id}: ${e.description}`).join('; ')}; ` +
    (env.buildkitd ? (env.buildkitd.endpoint ? `buildkitd ${env.buildkitd.endpoint.version} ${env.buildkitd.endpoint.unixAddress}, ${env.buildkitd.endpoint.tcpAddress} (mutual TLS); ` : 'buildkitd starting in the background; ') : '') +
    `fixtures build ${env.fixtures.build.manifestDigest.slice(0, 19)}…, run ${env.fixtures.run.manifestDigest.slice(0, 19)}…`
  );
}

/** The TestEnv of the surrounding test run, for a process started by a test (reads CNB_TESTENV). */
export function testEnvFromProcess(): TestEnv {
  const text = process.env[TESTENV_VARIABLE];
  if (!text) throw new Error(`reading the test environment: ${TESTENV_VARIABLE} is not set (start the tests through vitest or tools/testenv's cli)`);
  return JSON.parse(text) as TestEnv;
}

// test lane: system (every backend of the catalog against the real test environment: dockerd, buildah, and root for the in-place backend's chrooted RUN)
/**
 * Every catalog entry passes the backend contract (extender-core's kit), created by its
 * definition as a run creates it, once in each environment its package's `./testing` entry
 * names (engine sets, builders, session transports). This is the only place the contract runs
 * for the catalog's backends; a new entry fails this file until its package says where it runs.
 */
import { contractEnvironments as buildah } from '@cnb-extender/backend-buildah/testing';
import { contractEnvironments as buildkit } from '@cnb-extender/backend-buildkit/testing';
import { contractEnvironments as docker } from '@cnb-extender/backend-docker/testing';
import { contractEnvironments as inplace } from '@cnb-extender/backend-inplace/testing';
import { runBackendContract, type BackendContractEnvironment } from '@cnb-extender/extender-core/testing';
import { BACKEND_CATALOG } from './catalog.ts';

const CONTRACT_ENVIRONMENTS: Readonly<Record<string, () => BackendContractEnvironment[]>> = { inplace, buildah, docker, buildkit };

for (const entry of BACKEND_CATALOG) {
  const environments = CONTRACT_ENVIRONMENTS[entry.id];
  if (!environments) throw new Error(`backend ${entry.id} has no contract environments: export contractEnvironments() from ${entry.packageName}/testing and list it in this file`);
  const definition = await entry.definition();
  for (const environment of environments()) {
    runBackendContract(() => definition.create(environment.options), { ...environment.contract, name: `${entry.id} (${environment.name}) passes the backend contract` });
  }
}

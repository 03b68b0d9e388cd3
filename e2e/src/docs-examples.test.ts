/**
 * The Kubernetes example in docs/examples/buildkitd-kubernetes.yaml, checked
 * against the real thing rather than by eye:
 *
 * - its objects agree with each other (ports, selectors, mounts, the
 *   certificate layout the daemon reads and the extender's `?tlsdir=` wants);
 * - the extender pod is unprivileged as Pod Security "restricted" asks;
 * - buildkitd starts with the example's buildkitd.toml and the example's TLS
 *   arguments (the test PKI in place of the Secrets, a loopback port in place
 *   of 0.0.0.0:1234), and the extender, with the pod's BUILDKIT_HOST pointed at
 *   that port, extends a run image through it while the run image's registry
 *   is unreachable, as the NetworkPolicy has it.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MemorySink, extend, readLayoutImage } from '@cnb-extender/extender-core';
import { createWorkspace, readLayerFiles, type Workspace } from '@cnb-extender/extender-core/testing';
import { BuildKitBackend } from '@cnb-extender/backend-buildkit';
import { makeTestPki, startBuildkitd, waitForBuildkitd, type RunningBuildkitd } from '@cnb-extender/testenv';
import type { Digest } from '@cnb-extender/oci';
import { REPO_ROOT } from '@cnb-extender/release';

/** Kubernetes objects are read as plain JSON. */
// biome-ignore lint/suspicious/noExplicitAny: a manifest is walked by field names the test asserts on
type K8sObject = Record<string, any>;

// the environment's buildkitd binaries (built in the background on a new machine) start the example's daemon
const ready = await waitForBuildkitd(inject('testenv'));
const EXAMPLE = join(REPO_ROOT, 'docs', 'examples', 'buildkitd-kubernetes.yaml');
const objects: K8sObject[] = parseAllDocuments(readFileSync(EXAMPLE, 'utf8')).map((d) => {
  if (d.errors.length > 0) throw new Error(`${EXAMPLE}: ${d.errors.map((e) => e.message).join('; ')}`);
  return d.toJSON() as K8sObject;
});
const find = (kind: string, name?: string): K8sObject => {
  const found = objects.find((o) => o['kind'] === kind && (name === undefined || o['metadata']?.['name'] === name));
  if (!found) throw new Error(`${EXAMPLE} has no ${kind}${name ? ` ${name}` : ''}`);
  return found;
};

const deployment = find('Deployment', 'buildkitd');
const daemonPod = deployment['spec']['template'];
const daemonContainer = daemonPod['spec']['containers'][0];
const service = find('Service', 'buildkitd');
const configMap = find('ConfigMap', 'buildkitd-config');
const policy = find('NetworkPolicy');
const extenderPod = find('Pod');
const extenderContainer = extenderPod['spec']['containers'][0];

/** The daemon's arguments as flag → value. */
function daemonArgs(): Map<string, string> {
  const args: string[] = daemonContainer['args'];
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i += 2) out.set(args[i]!, args[i + 1]!);
  return out;
}

function mountPath(container: K8sObject, pod: K8sObject, volumeMatch: (v: K8sObject) => boolean): string {
  const volume = (pod['spec']['volumes'] as K8sObject[]).find(volumeMatch);
  if (!volume) throw new Error('volume not found');
  return (container['volumeMounts'] as K8sObject[]).find((m) => m['name'] === volume['name'])!['mountPath'];
}

const labelsMatch = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);
const buildkitHost = (): string => (extenderContainer['env'] as K8sObject[]).find((e) => e['name'] === 'BUILDKIT_HOST')!['value'];

describe('the Kubernetes example of a shared buildkitd', () => {
  it('has objects that agree: ports, selectors, and one certificate layout for the daemon and the extender', () => {
    const args = daemonArgs();
    expect([...args.keys()].sort()).toEqual(['--addr', '--config', '--tlscacert', '--tlscert', '--tlskey']);
    const port = Number(/^tcp:\/\/0\.0\.0\.0:(\d+)$/.exec(args.get('--addr')!)?.[1]);
    const containerPort = daemonContainer['ports'][0];
    expect(containerPort['containerPort']).toBe(port);
    expect(service['spec']['ports'][0]).toMatchObject({ port, targetPort: containerPort['name'] });
    expect(labelsMatch(service['spec']['selector'], daemonPod['metadata']['labels'])).toBe(true);
    expect(labelsMatch(deployment['spec']['selector']['matchLabels'], daemonPod['metadata']['labels'])).toBe(true);

    // the daemon reads the ConfigMap's key at the path --config names
    const configDir = mountPath(daemonContainer, daemonPod, (v) => v['configMap']?.['name'] === configMap['metadata']['name']);
    expect(dirname(args.get('--config')!)).toBe(configDir);
    expect(Object.keys(configMap['data'])).toContain(basename(args.get('--config')!));

    // server and client secrets use buildctl's --tlsdir names
    const serverCerts = mountPath(daemonContainer, daemonPod, (v) => v['secret'] !== undefined);
    expect([args.get('--tlscacert'), args.get('--tlscert'), args.get('--tlskey')]).toEqual(['ca.pem', 'cert.pem', 'key.pem'].map((f) => posix.join(serverCerts, f)));
    const host = new URL(buildkitHost());
    expect(`${host.hostname}:${host.port}`).toBe(`${service['metadata']['name']}.${service['metadata']['namespace']}.svc:${port}`);
    expect(host.searchParams.get('tlsdir')).toBe(mountPath(extenderContainer, extenderPod, (v) => v['secret'] !== undefined));

    // only extender pods reach the daemon, on its port
    expect(labelsMatch(policy['spec']['podSelector']['matchLabels'], daemonPod['metadata']['labels'])).toBe(true);
    const from = policy['spec']['ingress'][0];
    expect(labelsMatch(from['from'][0]['podSelector']['matchLabels'], extenderPod['metadata']['labels'])).toBe(true);
    expect(from['from'][0]['namespaceSelector']['matchLabels']['kubernetes.io/metadata.name']).toBe(extenderPod['metadata']['namespace']);
    expect(from['ports'][0]['port']).toBe(port);
  });

  it('runs the extender unprivileged, as Pod Security "restricted" asks', () => {
    const pod = extenderPod['spec']['securityContext'];
    expect(pod).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod['runAsUser']).not.toBe(0);
    expect(extenderContainer['securityContext']).toEqual({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    const args: string[] = extenderContainer['args'];
    expect(args[args.indexOf('-backend') + 1]).toBe('buildkit');
  });
});

describe(`the example daemon (buildkitd ${ready.version}) and extender, run`, () => {
  const env = inject('testenv');
  let dir = '';
  let daemon: RunningBuildkitd | undefined;
  let ws: Workspace | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'docs-example-'));
    await mkdir(join(dir, 'pki'));
    const pki = await makeTestPki(join(dir, 'pki'));
    // the example's buildkitd.toml and TLS arguments; the test PKI stands in for the Secrets
    daemon = await startBuildkitd(join(dir, 'daemon'), { pki, config: configMap['data'][basename(daemonArgs().get('--config')!)] });
  }, 120_000);

  afterAll(async () => {
    await ws?.remove();
    await daemon?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("extends a run image through the daemon with the pod's BUILDKIT_HOST, the registry out of reach", async () => {
    // the client Secret as mounted: ca.pem, cert.pem, key.pem
    const certs = join(dir, 'client-certs');
    await mkdir(certs);
    await cp(daemon!.tls.caFile, join(certs, 'ca.pem'));
    await cp(daemon!.tls.certFile, join(certs, 'cert.pem'));
    await cp(daemon!.tls.keyFile, join(certs, 'key.pem'));
    const address = new URL(buildkitHost());
    address.host = `127.0.0.1:${daemon!.port}`;
    address.searchParams.set('tlsdir', certs);
    // the test certificate names localhost, not the Service
    address.searchParams.set('servername', daemon!.tls.serverName);

    const run = env.fixtures.run;
    ws = await createWorkspace({
      platformApi: '0.13',
      runImage: `127.0.0.1:2/unreachable/run@${run.manifestDigest}`,
      baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'full' },
      extensions: [{ id: 'docs/example', run: 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo through-the-example > /example\nUSER 1000:1000\n' }],
    });
    const backend = new BuildKitBackend({ address: address.toString() });
    await extend({ kind: 'run', inputs: ws.inputs, backend, events: new MemorySink() });
    const out = readdirSync(join(ws.extendedDir, 'run'));
    expect(out).toHaveLength(1);
    const image = (await readLayoutImage(join(ws.extendedDir, 'run', out[0]!), 'out')).image;
    expect((await readLayerFiles(image.layers.at(-1)!.blob!)).get('example')?.toString()).toBe('through-the-example\n');
  }, 120_000);
});

import { describe, expect, it } from 'vitest';
import { createLifecycleDescriptor, parseLifecycleDescriptor, stringifyLifecycleDescriptor } from './lifecycle-descriptor.ts';
import { parse } from 'smol-toml';

const UPSTREAM = `[apis]
[apis.buildpack]
  deprecated = []
  supported = ["0.7", "0.8", "0.9", "0.10", "0.11", "0.12"]
[apis.platform]
  deprecated = []
  supported = ["0.7", "0.8", "0.9", "0.10", "0.11", "0.12", "0.13", "0.14", "0.15"]

[api]
  platform = "0.7"
  buildpack = "0.7"

[lifecycle]
  version = "0.21.0"
  sbom-formats = ["application/vnd.cyclonedx+json"]
`;

describe('lifecycle.toml', () => {
  it('reads the upstream descriptor', () => {
    const d = parseLifecycleDescriptor(UPSTREAM);
    expect(d.apis.platform.supported).toContain('0.15');
    expect(d.apis.buildpack.deprecated).toEqual([]);
    expect(d.api).toEqual({ platform: '0.7', buildpack: '0.7' });
    expect(d.lifecycle).toEqual({ version: '0.21.0', sbomFormats: ['application/vnd.cyclonedx+json'] });
    expect(parse(stringifyLifecycleDescriptor(d))).toEqual(parse(UPSTREAM));
  });

  it('is generated from the API lists', () => {
    const d = createLifecycleDescriptor({ version: '1.2.3', sbomFormats: ['application/vnd.cyclonedx+json'] });
    expect(parse(stringifyLifecycleDescriptor(d))).toEqual(parse(UPSTREAM.replace('0.21.0', '1.2.3')));
  });

  it('names the key of a bad list', () => {
    expect(() => parseLifecycleDescriptor('[apis.platform]\nsupported = "0.15"\n', '/cnb/lifecycle/lifecycle.toml')).toThrow(
      'reading lifecycle descriptor /cnb/lifecycle/lifecycle.toml: key apis.platform.supported: expected an array of strings, got a string',
    );
  });
});

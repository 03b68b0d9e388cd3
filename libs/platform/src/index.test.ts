import { describe, expect, it } from 'vitest';
import * as platform from '@cnb-extender/platform';

describe('public API (imported by package name)', () => {
  it('exports each area', () => {
    for (const name of [
      'ApiVersion', 'PLATFORM_APIS', 'EXTEND_PLATFORM_APIS', 'BUILDPACK_APIS', 'verifyPlatformApi', 'verifyBuildpackApi',
      'EXIT_CODES', 'EXIT_CODE_TABLE', 'ExtenderError', 'FlagError', 'fail', 'wrap', 'renderError',
      'createLogger', 'renderLogLine', 'parseLogLevel',
      'readAnalyzed', 'writeAnalyzed', 'updateAnalyzed', 'readGroup', 'verifyGroupExtensions', 'readExtendConfig', 'readPlan', 'readRun',
      'readLifecycleDescriptor', 'createLifecycleDescriptor', 'writeFileAtomic', 'ifExists', 'TomlFileError',
      'EXTENDER_INPUTS', 'resolveInputs', 'parseGoFlags', 'parseExtenderArgs', 'parseExtenderCommandLine', 'extenderUsage', 'parseGoDuration',
    ]) {
      expect(platform, name).toHaveProperty(name);
    }
  });

  it('the descriptor, the docs and the e2e matrix read the same lists', () => {
    const descriptor = platform.createLifecycleDescriptor({ version: '0.0.0' });
    expect(descriptor.apis.platform.supported).toEqual(platform.PLATFORM_APIS.supportedStrings());
    expect(platform.EXTEND_PLATFORM_APIS.supportedStrings().every((v) => descriptor.apis.platform.supported.includes(v))).toBe(true);
  });
});

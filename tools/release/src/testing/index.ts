/** What tests of other packages use from the release tool: the upstream lifecycle stand-in and the shared release build. */
export * from './upstream-stand-in.ts';
export { sharedReleaseBuild, type SharedRelease } from './shared-build.ts';

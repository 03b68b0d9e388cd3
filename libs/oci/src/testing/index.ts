/** Test helpers for packages that build or check layers: `@cnb-extender/oci/testing`. */
export { describeTree } from './tree.ts';
export { makeRichTree, NET_BIND_CAPABILITY, requireRoot } from './rich-tree.ts';

// Child process for the layer-cache tests: prunes the cache at argv[2] (run in
// a pid namespace of its own, as an extender in another container would).
import { LayerCache } from '../cache.ts';

new LayerCache(process.argv[2]!, 60_000).prune();

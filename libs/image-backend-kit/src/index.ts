export { ImageBackendError, messageOf } from './errors.ts';
export { filterTar, isIgnoredPath, effectivePath, normalizeEntryPath, type TarFilterStats } from './tar-filter.ts';
export { normalizeLayer, type NormalizedLayer, type NormalizeLayerOptions } from './layer.ts';
export { layerInstructions, allInstructions, attributeLayers, stepInstruction, type LayerInstruction } from './instructions.ts';
export { materializeBaseLayout, fetchBlob, type MaterializeBaseOptions, type MaterializedBase } from './base-layout.ts';
export { assembleImage, defaultBlobDir, type AssembleOptions, type BuiltImage, type BuiltLayer } from './assemble.ts';
export { readBuiltLayout } from './built-layout.ts';
export { runTool, type RunToolOptions, type ToolResult } from './tool.ts';
export { publishBuildImage, type BuildImageTarget, type PublishBuildImageOptions, type PublishedBuildImage } from './publish.ts';

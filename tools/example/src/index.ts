export * from './workspace.ts';
export * from './report.ts';

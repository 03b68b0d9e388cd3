export * from './schedule.ts';
export * from './builtin.ts';

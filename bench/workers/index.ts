/**
 * The worker templates bench/*.ts deploy with deployBenchTemplate() (bench/deploy.ts), each from
 * the file of its name: a function taking the worker's name first, then plain JSON values, that
 * returns the definition. Workers without parameters (startup.ts, svc.ts) are deployed as they are.
 */
export { bench } from './bench';
export { cursor } from './cursor';
export { hotspots } from './hotspots';
export { idle } from './idle';

/**
 * The worker templates the tests deploy by name with Cluster.deployTemplate() or templateFile()
 * (test/helpers/workers.ts), each from the file of its name. Each takes the worker's name first;
 * the other arguments are plain JSON values. requests.ts is not here: its handler is a function,
 * so the fixtures that use it import it.
 */
export { evaluator } from './evaluator';
export { idle } from './idle';
export { probe } from './probe';
export { recorder } from './recorder';
export { soak } from './soak';
export { stuck } from './stuck';
export { versioned } from './versioned';
export { whoami } from './whoami';

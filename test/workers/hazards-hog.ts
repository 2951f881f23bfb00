/** On request, allocates JS objects without limit (kept alive): its heap runs out. */
import { requestWorker } from './templates/requests';

export default requestWorker('hog', (ctx) => {
  ctx.log.info('allocating without limit');
  const keep: number[][] = [];
  for (;;) keep.push(new Array(100000).fill(Math.random()));
});

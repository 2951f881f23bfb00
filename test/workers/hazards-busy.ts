/** On request, keeps its JavaScript busy (no event loop turn) for `arg` ms. */
import { requestWorker } from './templates/requests';

export default requestWorker('busy', (ctx, ms) => {
  ctx.log.info('busy loop for ' + ms + ' ms');
  const end = performance.now() + ms;
  while (performance.now() < end);
  ctx.log.info('busy loop done');
});

/** On request, enters `while (true) {}` for good. */
import { requestWorker } from './templates/requests';

export default requestWorker('spinner', (ctx) => {
  ctx.log.info('entering while (true) {}');
  while (true);
});

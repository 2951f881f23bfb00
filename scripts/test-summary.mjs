// Prints vitest JSON reports as one plain closing line: "N passed, N failed, N skipped"
// (several reports are added up; a missing one is said, not counted).
import { readFileSync } from 'node:fs';

let passed = 0, failed = 0, skipped = 0;
for (const file of process.argv.slice(2)) {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8'));
    passed += r.numPassedTests;
    failed += r.numFailedTests;
    skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  } catch (e) {
    console.log(`test summary: ${file} unavailable (${e.message})`);
  }
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);

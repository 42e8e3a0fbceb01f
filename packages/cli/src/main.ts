/**
 * The `flotilla` command: `node --import tsx packages/cli/src/main.ts COMMAND …` (`pnpm flotilla
 * …` from the repository root, or the package's bin).
 */
import { runCli } from './cli.ts';

/** After a command finished, time for stdout to drain before the process is made to exit. */
const EXIT_GRACE_MS = 2_000;

const outcome = await runCli(process.argv.slice(2), process.env);
if (outcome !== 'serving') {
  // Exit once stdout drained (pipes are asynchronous); force it if a handle stays open.
  process.exitCode = outcome;
  setTimeout(() => process.exit(outcome), EXIT_GRACE_MS).unref();
}

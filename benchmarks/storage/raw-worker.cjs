// Entry of a raw.ts writer thread. CommonJS on purpose: on Node 20 worker threads get tsx's
// require hook but not its ESM hooks, so the TypeScript is loaded through require (as piscina does).
require('./raw.ts').runWriterThread();

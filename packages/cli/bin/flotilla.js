#!/usr/bin/env node
// The `flotilla` command as an installed bin: loads tsx's loader (the CLI is TypeScript run
// without a build step), makes worker threads load it too, and runs src/main.ts.
const tsx = import.meta.resolve('tsx');
process.execArgv.push('--import', tsx);
await import(tsx);
await import('../src/main.ts');

/**
 * `flotilla ctl …`: the operator's view of a cluster through PD's JSON API. Tables by default,
 * `--json` prints PD's answer as one JSON object for scripts.
 */
import {
  CLUSTER_OPTIONS,
  ENCODING_OPTION,
  HELP_OPTION,
  JSON_OPTION,
  clusterTarget,
  commandHelp,
  parseCommandArgs,
  parseEncoding,
  type OptionSpecs,
  type ParsedArgs,
} from '../args.ts';
import { decodeArg, displayHexKey, hexOfBytes, type KeyEncoding } from '../encoding.ts';
import { CliError, EXIT, clusterError, isCliError, usageError, type ExitCode } from '../errors.ts';
import { ago, bytes, duration, table } from '../format.ts';
import { PdApi, type PdRegionJson, type PdStoreJson } from '../pd-api.ts';

const API = '/pd/api/v1';
/** Pause between two looks while waiting for an operator's effect. */
const WAIT_POLL_MS = 200;

interface OperatorJson {
  readonly operator: {
    readonly id: number;
    readonly regionId: number;
    readonly origin: string;
    readonly reason: string;
    readonly steps: readonly { readonly type: string }[];
    readonly createdMs: number;
  };
  readonly step: number;
}

interface HistoryJson {
  readonly atMs: number;
  readonly event: string;
  readonly operatorId: number;
  readonly regionId: number;
  readonly origin: string;
  readonly reason: string;
  readonly detail?: string;
}

interface Ctx {
  readonly args: ParsedArgs;
  readonly pd: PdApi;
  readonly json: boolean;
  readonly encoding: KeyEncoding;
  readonly timeoutMs: number;
  out(text: string): void;
}

interface CtlCommand {
  readonly synopsis: string;
  readonly help: string;
  readonly positionals: number;
  readonly options?: OptionSpecs;
  run(ctx: Ctx): Promise<ExitCode>;
}

/** Backups: `--timeout-ms` bounds each answer and each chunk of a copy, not the whole command. */
const BACKUP_TIMEOUT_OPTION: OptionSpecs = {
  'timeout-ms': { ...CLUSTER_OPTIONS['timeout-ms']!, help: 'how long PD or a store may take to answer (for restore: each putMany, retries included)' },
};

const WAIT_OPTION: OptionSpecs = { 'no-wait': { type: 'boolean', help: 'return once PD accepted the operator, without waiting for its effect' } };

const COMMANDS: Readonly<Record<string, CtlCommand>> = {
  stores: {
    synopsis: 'stores',
    help: 'every store: state, addresses, regions and leaders, disk',
    positionals: 0,
    async run(ctx) {
      const body = await ctx.pd.get<{ stores: PdStoreJson[] }>(`${API}/stores`);
      if (ctx.json) return print(ctx, body);
      const rows = [...body.stores]
        .sort((a, b) => a.id - b.id)
        .map((s) => [
          String(s.id),
          s.state,
          s.apiAddress,
          s.raftAddress,
          String(s.regionCount),
          String(s.leaderCount),
          bytes(s.usedBytes),
          // Below its reserve the store refuses puts where it leads (PD moves those leaderships away).
          s.refusingWrites === true ? `${bytes(s.availableBytes)} (refusing writes)` : bytes(s.availableBytes),
          labels(s.labels),
          ago(s.lastHeartbeatMs),
        ]);
      ctx.out(table(['ID', 'STATE', 'API', 'RAFT', 'REGIONS', 'LEADERS', 'USED', 'AVAILABLE', 'LABELS', 'HEARTBEAT'], rows, '(no stores)'));
      return EXIT.ok;
    },
  },
  'store-state': {
    synopsis: 'store-state STORE offline|serving|tombstone',
    help: 'offline: move every replica away (drain); serving: undo offline; tombstone: remove an offline, empty store for good',
    positionals: 2,
    async run(ctx) {
      const id = positiveInt(ctx.args.positionals[0]!, 'STORE');
      const state = ctx.args.positionals[1]!;
      if (!['offline', 'serving', 'tombstone'].includes(state)) throw usageError(`ctl store-state: the state must be offline, serving or tombstone, got "${state}"`);
      const body = await ctx.pd.post<PdStoreJson>(`${API}/stores/${id}/state`, { state });
      if (ctx.json) return print(ctx, body);
      ctx.out(`store ${body.id}: ${body.state} (${body.regionCount} regions)\n`);
      return EXIT.ok;
    },
  },
  regions: {
    synopsis: 'regions [--limit N] [--start KEY] [--end KEY]',
    help: 'regions in key order: range, leader, voters, learners, epoch, size',
    positionals: 0,
    options: {
      limit: { type: 'string', value: 'N', fallback: '1000', help: 'at most N regions (1..10000)' },
      start: { type: 'string', value: 'KEY', help: 'regions overlapping [KEY, …)' },
      end: { type: 'string', value: 'KEY', help: 'regions overlapping […, KEY)' },
    },
    async run(ctx) {
      const limit = ctx.args.integer('limit', 1, 10_000);
      const start = keyParam(ctx, 'start');
      const end = keyParam(ctx, 'end');
      const body = await ctx.pd.get<{ regions: PdRegionJson[]; more: boolean }>(`${API}/regions?start=${start}&end=${end}&limit=${limit}`);
      if (ctx.json) return print(ctx, body);
      ctx.out(table(['ID', 'START', 'END', 'LEADER', 'VOTERS', 'LEARNERS', 'VERSION', 'CONFVER', 'SIZE', 'KEYS'], body.regions.map(regionRow), '(no regions: no store has joined yet)'));
      if (body.more) ctx.out(`… more regions past these ${body.regions.length} (--limit)\n`);
      return EXIT.ok;
    },
  },
  region: {
    synopsis: 'region KEY',
    help: 'the region holding KEY, its peers and leader',
    positionals: 1,
    async run(ctx) {
      const key = decodeArg('key', ctx.args.positionals[0]!, ctx.encoding);
      const body = await ctx.pd.get<PdRegionJson>(`${API}/region-by-key?key=${hexOfBytes(key)}`);
      if (ctx.json) return print(ctx, body);
      ctx.out(regionText(body));
      return EXIT.ok;
    },
  },
  operators: {
    synopsis: 'operators',
    help: 'operators running now, with their current step',
    positionals: 0,
    async run(ctx) {
      const body = await ctx.pd.get<{ operators: OperatorJson[] }>(`${API}/operators`);
      if (ctx.json) return print(ctx, body);
      const rows = body.operators.map(({ operator: op, step }) => [
        String(op.regionId),
        String(op.id),
        op.origin,
        `${step + 1}/${op.steps.length} ${op.steps[step]?.type ?? '-'}`,
        duration(Math.max(0, Date.now() - op.createdMs)),
        op.reason,
      ]);
      ctx.out(table(['REGION', 'OPERATOR', 'ORIGIN', 'STEP', 'AGE', 'REASON'], rows, '(no operators running)'));
      return EXIT.ok;
    },
  },
  schedulers: {
    synopsis: 'schedulers',
    help: 'checkers and schedulers, and whether they run',
    positionals: 0,
    async run(ctx) {
      const body = await ctx.pd.get<{ checkers: { name: string; enabled: boolean }[]; schedulers: ({ name: string; enabled: boolean } & Record<string, unknown>)[] }>(`${API}/schedulers`);
      if (ctx.json) return print(ctx, body);
      const rows = [
        ...body.checkers.map((c) => [c.name, 'checker', c.enabled ? 'yes' : 'paused', '']),
        ...body.schedulers.map(({ name, enabled, ...rest }) => [name, 'scheduler', enabled ? 'yes' : 'paused', Object.entries(rest).map(([k, v]) => `${k}=${String(v)}`).join(' ')]),
      ];
      ctx.out(table(['NAME', 'KIND', 'RUNNING', 'SETTINGS'], rows));
      return EXIT.ok;
    },
  },
  pause: {
    synopsis: 'pause NAME',
    help: 'pause a checker or scheduler (persisted; see ctl schedulers for the names)',
    positionals: 1,
    run: (ctx) => switchScheduler(ctx, 'pause'),
  },
  resume: {
    synopsis: 'resume NAME',
    help: 'resume a paused checker or scheduler',
    positionals: 1,
    run: (ctx) => switchScheduler(ctx, 'resume'),
  },
  members: {
    synopsis: 'members',
    help: 'PD\'s members, their roles and the leader',
    positionals: 0,
    async run(ctx) {
      const body = await ctx.pd.get<{ leader: number | null; term: number; voters: number[]; learners: number[]; members: { id: number; raftAddress: string; clientUrl: string }[] }>(`${API}/members`);
      if (ctx.json) return print(ctx, body);
      const rows = body.members.map((m) => [String(m.id), body.voters.includes(m.id) ? 'voter' : body.learners.includes(m.id) ? 'learner' : 'joining', m.id === body.leader ? 'leader' : '', m.clientUrl, m.raftAddress]);
      ctx.out(table(['ID', 'ROLE', 'LEADER', 'CLIENT', 'RAFT'], rows, '(no members)'));
      return EXIT.ok;
    },
  },
  history: {
    synopsis: 'history [--limit N]',
    help: 'what the schedulers did and why, newest first',
    positionals: 0,
    options: { limit: { type: 'string', value: 'N', fallback: '20', help: 'at most N entries (1..4096)' } },
    async run(ctx) {
      const limit = ctx.args.integer('limit', 1, 4_096);
      const body = await ctx.pd.get<{ history: HistoryJson[] }>(`${API}/history?limit=${limit}`);
      if (ctx.json) return print(ctx, body);
      const rows = body.history.map((h) => [ago(h.atMs), String(h.regionId), String(h.operatorId), h.origin, h.event, `${h.reason}${h.detail ? ` (${h.detail})` : ''}`]);
      ctx.out(table(['WHEN', 'REGION', 'OPERATOR', 'ORIGIN', 'EVENT', 'REASON'], rows, '(no history: this PD leader has not scheduled anything yet)'));
      return EXIT.ok;
    },
  },
  split: {
    synopsis: 'split KEY [--no-wait]',
    help: 'split the region holding KEY so that a new region starts at KEY; waits until PD sees it',
    positionals: 1,
    options: WAIT_OPTION,
    async run(ctx) {
      const key = decodeArg('key', ctx.args.positionals[0]!, ctx.encoding);
      if (key.length === 0) throw usageError('ctl split: the key is empty');
      const hex = hexOfBytes(key);
      const region = await ctx.pd.get<PdRegionJson>(`${API}/region-by-key?key=${hex}`);
      if (region.startKey === hex) throw new CliError(EXIT.usage, `ctl split: region ${region.id} starts at ${displayHexKey(hex, 'start')} already`);
      const body = await ctx.pd.post<{ operator: { id: number } }>(`${API}/operators`, { type: 'split', regionId: region.id, keys: [hex] });
      if (!ctx.args.flag('no-wait')) {
        await waitUntil(ctx, `region ${region.id} to split at ${displayHexKey(hex, 'start')}`, async () => (await ctx.pd.get<PdRegionJson>(`${API}/region-by-key?key=${hex}`)).startKey === hex);
      }
      if (ctx.json) return print(ctx, { operatorId: body.operator.id, regionId: region.id, key: hex, waited: !ctx.args.flag('no-wait') });
      ctx.out(ctx.args.flag('no-wait') ? `split of region ${region.id} started (operator ${body.operator.id})\n` : `region ${region.id} split at ${displayHexKey(hex, 'start')}\n`);
      return EXIT.ok;
    },
  },
  'transfer-leader': {
    synopsis: 'transfer-leader REGION STORE [--no-wait]',
    help: 'move the leadership of REGION to its voter on STORE; waits until PD sees it',
    positionals: 2,
    options: WAIT_OPTION,
    async run(ctx) {
      const regionId = positiveInt(ctx.args.positionals[0]!, 'REGION');
      const storeId = positiveInt(ctx.args.positionals[1]!, 'STORE');
      const body = await ctx.pd.post<{ operator: { id: number } }>(`${API}/operators`, { type: 'transferLeader', regionId, toStoreId: storeId });
      if (!ctx.args.flag('no-wait')) {
        await waitUntil(ctx, `the leader of region ${regionId} on store ${storeId}`, async () => (await ctx.pd.get<PdRegionJson>(`${API}/regions/${regionId}`)).leader?.storeId === storeId);
      }
      if (ctx.json) return print(ctx, { operatorId: body.operator.id, regionId, storeId, waited: !ctx.args.flag('no-wait') });
      ctx.out(ctx.args.flag('no-wait') ? `transfer of region ${regionId} to store ${storeId} started (operator ${body.operator.id})\n` : `region ${regionId} is led from store ${storeId}\n`);
      return EXIT.ok;
    },
  },
  backup: {
    synopsis: 'backup (--all | --region ID[,ID…]) --out DIR',
    help: 'copy regions, each at one point in time, from their leaders into DIR (a .snap file per region and manifest.json)',
    positionals: 0,
    options: {
      all: { type: 'boolean', help: 'every region: the whole keyspace' },
      region: { type: 'string', value: 'ID[,ID…]', multiple: true, help: 'only these regions (may be repeated)' },
      out: { type: 'string', value: 'DIR', help: 'the folder to write (created if missing; one holding a backup is refused)' },
      ...BACKUP_TIMEOUT_OPTION,
    },
    run: async (ctx) => (await import('./backup.ts')).runBackup(ctx),
  },
  restore: {
    synopsis: 'restore --in DIR [--check]',
    help: 'check a backup (manifest, every frame\'s checksum), then write all its pairs into the cluster',
    positionals: 0,
    options: {
      in: { type: 'string', value: 'DIR', help: 'a folder ctl backup wrote' },
      check: { type: 'boolean', help: 'only check the backup; write nothing' },
      concurrency: { type: 'string', value: 'N', fallback: '4', help: 'putMany batches in flight' },
      ...BACKUP_TIMEOUT_OPTION,
    },
    run: async (ctx) => (await import('./backup.ts')).runRestore(ctx),
  },
};

const COMMON: OptionSpecs = { ...CLUSTER_OPTIONS, ...ENCODING_OPTION, ...JSON_OPTION, ...HELP_OPTION };

export function ctlHelp(): string {
  const width = Math.max(...Object.values(COMMANDS).map((c) => c.synopsis.length));
  const lines = Object.values(COMMANDS).map((c) => `  ${c.synopsis.padEnd(width)}  ${c.help}`);
  return `${commandHelp('flotilla ctl COMMAND [ARGS] [options]', `Operates a cluster through PD's API. Commands:\n${lines.join('\n')}\n\nTables by default; --json prints PD's answer for scripts. Keys are read with --encoding.`, COMMON)}`;
}

export async function ctlCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<ExitCode> {
  const name = argv[0];
  if (name === undefined || name === '--help' || name === 'help' || name === '-h') {
    process.stdout.write(ctlHelp());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const command = COMMANDS[name];
  if (!command) throw usageError(`ctl: unknown command "${name}"; one of ${Object.keys(COMMANDS).join(', ')} (flotilla ctl --help)`);
  const options = { ...COMMON, ...command.options };
  const args = parseCommandArgs(`ctl ${name}`, argv.slice(1), options, env, command.positionals);
  if (args.flag('help')) {
    process.stdout.write(commandHelp(`flotilla ctl ${command.synopsis}`, command.help, options));
    return EXIT.ok;
  }
  if (args.positionals.length < command.positionals) throw usageError(`ctl ${name}: missing arguments; usage: flotilla ctl ${command.synopsis}`);
  const { pdUrls, timeoutMs, tls } = clusterTarget(args);
  const pd = new PdApi(pdUrls, timeoutMs, tls);
  try {
    return await command.run({ args, pd, json: args.flag('json'), encoding: parseEncoding(args), timeoutMs, out: (text) => process.stdout.write(text) });
  } finally {
    await pd.close();
  }
}

async function switchScheduler(ctx: Ctx, action: 'pause' | 'resume'): Promise<ExitCode> {
  const name = ctx.args.positionals[0]!;
  if (!/^[A-Za-z]{1,64}$/.test(name)) throw usageError(`ctl ${action}: "${name}" is not a scheduler name (flotilla ctl schedulers)`);
  const body = await ctx.pd.post<unknown>(`${API}/schedulers/${name}/${action}`, {});
  if (ctx.json) return print(ctx, body);
  ctx.out(`${name}: ${action === 'pause' ? 'paused' : 'running'}\n`);
  return EXIT.ok;
}

function print(ctx: Ctx, body: unknown): ExitCode {
  ctx.out(`${JSON.stringify(body)}\n`);
  return EXIT.ok;
}

function regionRow(r: PdRegionJson): string[] {
  const voters = r.peers.filter((p) => p.role === 'voter').map((p) => p.storeId);
  const learners = r.peers.filter((p) => p.role === 'learner').map((p) => p.storeId);
  return [
    String(r.id),
    displayHexKey(r.startKey, 'start'),
    displayHexKey(r.endKey, 'end'),
    r.leader ? `store ${r.leader.storeId}` : '-',
    voters.join(',') || '-',
    learners.join(',') || '-',
    String(r.epoch.version),
    String(r.epoch.confVer),
    r.approximateBytes === undefined ? '-' : bytes(r.approximateBytes),
    r.approximateKeys === undefined ? '-' : String(r.approximateKeys),
  ];
}

function regionText(r: PdRegionJson): string {
  const head = [
    `region ${r.id}`,
    `  range:    [${displayHexKey(r.startKey, 'start')}, ${displayHexKey(r.endKey, 'end')})`,
    `  epoch:    version ${r.epoch.version}, confVer ${r.epoch.confVer}`,
    `  leader:   ${r.leader ? `peer ${r.leader.peerId} on store ${r.leader.storeId}` : 'none known'}`,
    `  size:     ${r.approximateBytes === undefined ? '-' : bytes(r.approximateBytes)}, ${r.approximateKeys ?? '-'} keys`,
    '',
  ].join('\n');
  const rows = r.peers.map((p) => [String(p.id), String(p.storeId), p.role, p.id === r.leader?.peerId ? 'leader' : '', r.downPeerIds?.includes(p.id) ? 'down' : r.pendingPeerIds?.includes(p.id) ? 'pending' : 'ok']);
  return `${head}\n${table(['PEER', 'STORE', 'ROLE', 'LEADER', 'STATUS'], rows)}`;
}

function labels(l: Readonly<Record<string, string>>): string {
  const entries = Object.entries(l);
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}=${v}`).join(',');
}

function keyParam(ctx: Ctx, name: string): string {
  const text = ctx.args.string(name);
  return text === undefined ? '' : hexOfBytes(decodeArg(`--${name}`, text, ctx.encoding));
}

function positiveInt(text: string, what: string): number {
  const n = /^\d{1,15}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw usageError(`${what} must be a positive integer, got "${text}"`);
  return n;
}

/** Polls `done` until true; a CliError at the command's deadline. */
async function waitUntil(ctx: Ctx, what: string, done: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + ctx.timeoutMs;
  let problem = '';
  for (;;) {
    try {
      if (await done()) return;
    } catch (err) {
      // A gap in PD's table while the split is reported, an election: look again.
      if (!isCliError(err)) throw err;
      problem = `; last answer: ${err.message}`;
    }
    if (performance.now() + WAIT_POLL_MS > deadline) throw clusterError(`PD accepted the operator, but it did not see ${what} within ${ctx.timeoutMs} ms${problem} (flotilla ctl operators; flotilla ctl history)`);
    await new Promise((resolve) => setTimeout(resolve, WAIT_POLL_MS));
  }
}

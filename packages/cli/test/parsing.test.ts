/** The CLI's pure pieces: key encodings, --pd URLs, tables. (End-to-end tests: test/cli-*.test.ts.) */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCommandArgs, parsePdUrls } from '../src/args.ts';
import { decodeArg, displayHexKey, displayKey, encodeOut } from '../src/encoding.ts';
import { EXIT, isCliError } from '../src/errors.ts';
import { table } from '../src/format.ts';

const usage = (err: unknown): boolean => isCliError(err) && err.exitCode === EXIT.usage;

describe('key encodings', () => {
  it('reads utf8, hex (with or without 0x) and base64, and refuses what does not decode', () => {
    assert.deepEqual([...decodeArg('key', 'ab', 'utf8')], [0x61, 0x62]);
    assert.deepEqual([...decodeArg('key', '0x00ff', 'hex')], [0x00, 0xff]);
    assert.deepEqual([...decodeArg('key', 'AAE=', 'base64')], [0x00, 0x01]);
    assert.throws(() => decodeArg('key', 'abc', 'hex'), usage);
    assert.throws(() => decodeArg('key', 'zz', 'hex'), usage);
    assert.throws(() => decodeArg('key', 'a*b=', 'base64'), usage);
    assert.throws(() => decodeArg('key', 'abc', 'base64'), usage);
  });

  it('prints in the encoding asked for; tables show binary keys as 0x-hex', () => {
    const bytes = new Uint8Array([0x00, 0x61]);
    assert.equal(encodeOut(bytes, 'hex'), '0061');
    assert.equal(encodeOut(bytes, 'base64'), 'AGE=');
    assert.equal(displayKey(new Uint8Array(Buffer.from('user:1'))), 'user:1');
    assert.equal(displayKey(bytes), '0x0061');
    assert.equal(displayHexKey('', 'start'), '(start)');
    assert.equal(displayHexKey('', 'end'), '(end)');
  });
});

describe('--pd', () => {
  it('takes a comma-separated list of http or https origins (no scheme: http)', () => {
    assert.deepEqual(parsePdUrls('http://a:2379, b:2379'), ['http://a:2379', 'http://b:2379']);
    assert.throws(() => parsePdUrls(''), usage);
    assert.deepEqual(parsePdUrls('https://a:2379,b:1'), ['https://a:2379', 'http://b:1']);
    assert.throws(() => parsePdUrls('ftp://a:2379'), usage);
    assert.throws(() => parsePdUrls('https://a:2379/pd'), usage);
    assert.throws(() => parsePdUrls('http://a:2379/pd'), usage);
    assert.throws(() => parsePdUrls(Array.from({ length: 17 }, (_, i) => `http://a:${i + 1}`).join(',')), usage);
  });
});

describe('tables', () => {
  it('pads every column but the last to its widest cell', () => {
    assert.equal(table(['ID', 'NAME'], [['1', 'a'], ['100', 'bb']]), 'ID   NAME\n1    a\n100  bb\n');
    assert.equal(table(['ID'], [], '(none)'), '(none)\n');
  });
});

describe('flags', () => {
  it('a flag that may be repeated keeps every value in order; string() gives the last', () => {
    const specs = { region: { type: 'string', multiple: true, help: '' }, out: { type: 'string', help: '' } } as const;
    const args = parseCommandArgs('ctl backup', ['--region', '2', '--out', 'd', '--region', '7,9'], specs, {}, 0);
    assert.deepEqual(args.all('region'), ['2', '7,9']);
    assert.equal(args.string('region'), '7,9');
    assert.deepEqual(args.all('out'), ['d']);
    assert.deepEqual(parseCommandArgs('ctl backup', [], specs, {}, 0).all('region'), []);
    assert.throws(() => parseCommandArgs('ctl backup', ['--out', 'a', '--out'], specs, {}, 0), usage);
  });
});

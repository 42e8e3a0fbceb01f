/**
 * The small programs the pods run around `flotilla`: start scripts (sh) that turn what only
 * the pod knows into FLOTILLA_* variables, the init container that reads the node's zone, and
 * the job that sets PD's location labels. They are embedded in the manifests verbatim, so
 * what the deploy test runs is what the kubelet runs.
 *
 * Kubelet expands `$(NAME)` in commands for NAME among the container's variables and turns
 * `$$` into `$`: the shell scripts use neither (`$((…))` names no variable, so it stays).
 */
import { LOCATION_LABELS, SERVICE_ACCOUNT_DIR, STORE, ZONE_NODE_LABEL } from './constants.ts';

/** A label value's bound in the store's --labels (packages/store/src/process/config.ts). */
const LABEL_VALUE_CHARS_MAX = 64;

export const TOPOLOGY_LABELS_FILE = `${STORE.topologyDir}/labels`;

/** PD: member ids are 1-based; pod flotilla-pd-N is member N+1 (the founding list says so too). */
export const PD_START_SCRIPT = [
  'set -eu',
  'ordinal=${POD_NAME##*-}',
  'FLOTILLA_MEMBER_ID=$((ordinal + 1))',
  'export FLOTILLA_MEMBER_ID',
  'exec flotilla pd',
].join('\n');

/** Store: its location labels come from the file the init container wrote. */
export const STORE_START_SCRIPT = [
  'set -eu',
  `read -r FLOTILLA_LABELS < ${TOPOLOGY_LABELS_FILE}`,
  'export FLOTILLA_LABELS',
  'exec flotilla store',
].join('\n');

/**
 * The init container of a store pod: the downward API cannot pass a node's labels, so it asks
 * the API server for its node (RBAC: get nodes) and writes `zone=<zone>,host=<node>` for the
 * store's --labels. No zone label on the node (a one-node dev cluster): host only. Fails (and
 * the kubelet retries it) while the API server does not answer.
 */
export const NODE_TOPOLOGY_SCRIPT = `'use strict';
const fs = require('node:fs');
const https = require('node:https');
const crypto = require('node:crypto');
const nodeName = process.env.NODE_NAME;
const fail = (message) => { console.error(JSON.stringify({ level: 'error', msg: message })); process.exit(1); };
if (!nodeName) fail('NODE_NAME is not set (downward API: spec.nodeName)');
const sa = ${JSON.stringify(SERVICE_ACCOUNT_DIR)};
const labelValue = (v) => v.length <= ${LABEL_VALUE_CHARS_MAX} ? v : v.slice(0, 47) + '-' + crypto.createHash('sha256').update(v).digest('hex').slice(0, 16);
const request = https.get({
  host: process.env.KUBERNETES_SERVICE_HOST,
  port: process.env.KUBERNETES_SERVICE_PORT,
  path: '/api/v1/nodes/' + encodeURIComponent(nodeName),
  ca: fs.readFileSync(sa + '/ca.crt'),
  headers: { authorization: 'Bearer ' + fs.readFileSync(sa + '/token', 'utf8').trim(), accept: 'application/json' },
  timeout: 10000,
}, (res) => {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (chunk) => { body += chunk; });
  res.on('end', () => {
    if (res.statusCode !== 200) fail('GET node ' + nodeName + ': ' + res.statusCode + ' ' + body.slice(0, 300));
    const labels = (JSON.parse(body).metadata || {}).labels || {};
    const zone = labels[${JSON.stringify(ZONE_NODE_LABEL)}];
    const pairs = (zone ? ['zone=' + labelValue(zone)] : []).concat(['host=' + labelValue(nodeName)]);
    fs.writeFileSync(${JSON.stringify(TOPOLOGY_LABELS_FILE)}, pairs.join(',') + '\\n');
    console.log(JSON.stringify({ level: 'info', msg: 'store location labels', labels: pairs.join(',') }));
  });
});
request.on('timeout', () => request.destroy(new Error('no answer in 10 s')));
request.on('error', (err) => fail('GET node ' + nodeName + ': ' + err.message));
`;

/** The scheduling configuration the job PUTs: location labels, widest failure domain first. */
export const PD_SCHEDULE_CONFIG = { locationLabels: [...LOCATION_LABELS] };

/**
 * The job that sets PD's scheduling configuration (PD keeps it in its replicated metadata; it
 * has no flag). Tries every member until one (the leader) accepts; idempotent, so re-running
 * it does no harm.
 */
export const PD_CONFIG_SCRIPT = `'use strict';
const members = (process.env.FLOTILLA_PD || '').split(',').filter((u) => u !== '');
const body = process.env.PD_SCHEDULE_CONFIG || '{}';
const giveUpAt = Date.now() + 10 * 60 * 1000;
const log = (level, msg, fields) => console.log(JSON.stringify(Object.assign({ level, msg }, fields)));
async function attempt() {
  for (const url of members) {
    try {
      const res = await fetch(url + '/pd/api/v1/config', { method: 'PUT', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(5000) });
      const text = await res.text();
      if (res.ok) { log('info', 'PD scheduling configuration set', { through: url, locationLabels: JSON.parse(text).locationLabels }); return true; }
      log('warn', 'PD refused the configuration; retrying', { through: url, status: res.status, body: text.slice(0, 300) });
    } catch (err) {
      log('warn', 'PD member unreachable; retrying', { through: url, err: String(err) });
    }
  }
  return false;
}
(async () => {
  if (members.length === 0) { log('error', 'FLOTILLA_PD lists no PD member'); process.exit(1); }
  while (Date.now() < giveUpAt) {
    if (await attempt()) return;
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
  log('error', 'gave up: no PD member accepted the configuration in 10 minutes');
  process.exit(1);
})();
`;

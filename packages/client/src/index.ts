/**
 * @flotilla/client — the range-partitioned SDK of Flotilla. The public API, named explicitly;
 * everything else is internal. See docs/CLIENT.md.
 */
export { FlotillaClient, createClient } from './client.ts';
export type { CallOptions, CasResult, ClientOptions, ClientStats, Consistency, KvEntry, ReadOptions, ScanOptions } from './client.ts';
export { tlsConnect, untrustedServerCertificate } from './client-tls.ts';
export type { ClientTls } from './client-tls.ts';
export { CLIENT_ERROR_CODES, ClientError, isClientError, isRetryable } from './errors.ts';
export type { ClientErrorCode } from './errors.ts';
export type { Bytes } from './keys.ts';
export { clientLimits } from './constants.ts';
export type { RegionSource, RoutedRegion, StoreRecord } from './pd-client.ts';
export type { ChannelOptions } from './store-channel.ts';

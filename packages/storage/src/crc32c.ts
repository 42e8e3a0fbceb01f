/**
 * CRC-32C (Castagnoli), for every checksummed record on disk. One implementation serves the
 * whole project: @flotilla/wire's (frames use the same checksum), re-exported here.
 */
export { crc32c, crc32cUpdate } from '@flotilla/wire';

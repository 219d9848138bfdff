/**
 * @file Redis URLs for the queue: parsed into ioredis options, shown without their password, and checked once up
 * front so that an unreachable server is one clear error naming the URL (ioredis alone retries forever).
 */
import { Redis } from 'ioredis';

/** Where a Redis server is: what both ioredis and BullMQ's connection option accept. */
export interface RedisAddress {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db: number;
  tls?: Record<string, never>;
}

/** `redis://[user:password@]host[:port][/db]` or `rediss://…` (TLS) as ioredis options. */
export function redisOptions(url: string): RedisAddress {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`invalid Redis URL '${url}' (expected redis://host:port or rediss://host:port)`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error(`invalid Redis URL '${redactUrl(url)}': the scheme must be redis:// or rediss://`);
  const db = u.pathname && u.pathname !== '/' ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new Error(`invalid Redis URL '${redactUrl(url)}': database '${u.pathname.slice(1)}' is not a number`);
  return {
    host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    db,
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/** The URL with its password replaced by `***`, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
  }
}

/** Thrown when Redis cannot be reached; the message names the URL (password hidden). */
export class RedisUnreachableError extends Error {
  override name = 'RedisUnreachableError';
}

/**
 * Connects once (no retries), pings and reads the server version: resolves with the version, or rejects with a
 * {@link RedisUnreachableError} naming the URL within about `timeoutMs`. BullMQ needs Redis ≥ 5.
 */
export async function checkRedis(url: string, timeoutMs = 3000): Promise<string> {
  const shown = redactUrl(url);
  const client = new Redis({
    ...redisOptions(url),
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // connect() rejects with 'Connection is closed.'; the cause (ECONNREFUSED, ENOTFOUND, …) comes as an 'error' event.
  let cause = '';
  client.on('error', (e: Error) => {
    cause ||= e.message;
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    const version = await Promise.race([
      (async () => {
        await client.connect();
        await client.ping();
        const info = await client.info('server');
        return /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
      })(),
      timeout,
    ]);
    const major = Number(version.split('.')[0]);
    if (Number.isFinite(major) && major < 5) throw new RedisUnreachableError(`Redis at ${shown} is version ${version}; the queue (BullMQ) needs Redis ≥ 5`);
    return version;
  } catch (e) {
    if (e instanceof RedisUnreachableError) throw e;
    const msg = cause || (e instanceof Error ? e.message : String(e));
    throw new RedisUnreachableError(
      `cannot reach Redis at ${shown}: ${msg || 'connection failed'} (start one, e.g. redis-server --port 6379, or pass --redis redis://host:port)`,
    );
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}

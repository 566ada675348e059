import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { floorHour, HOUR_MS } from '../../functions/core/hours.js';
import { logRows, serializeRows } from '../../functions/simulator/dataset.js';
import { LocalyticsSimulator, SIMULATOR_DEFAULT_CREDENTIALS } from '../../functions/simulator/server.js';

const auth = `Basic ${Buffer.from(`${SIMULATOR_DEFAULT_CREDENTIALS.apiKey}:${SIMULATOR_DEFAULT_CREDENTIALS.apiSecret}`).toString('base64')}`;
let clock = Date.now();
const simulator = new LocalyticsSimulator({ ratePerMinute: 5, now: () => clock, urlTtlMs: 60_000 });
beforeAll(() => simulator.start());
afterAll(() => simulator.stop());

const app = () => simulator.dataset.apps[0] as string;
const get = (path: string, headers: Record<string, string> = { authorization: auth }) =>
  fetch(`${simulator.url}${path}`, { headers, redirect: 'manual' });
const logPath = (hour: number, pad = true) => {
  const d = new Date(hour);
  const p = (n: number) => (pad ? String(n).padStart(2, '0') : String(n));
  return `/v1/exports/analytics/logs/${app()}/${d.getUTCFullYear()}/${p(d.getUTCMonth() + 1)}/${p(d.getUTCDate())}/${p(d.getUTCHours())}`;
};

describe('LocalyticsSimulator', () => {
  test('answers 401 without credentials', async () => {
    clock += 120_000;
    expect((await get('/v1/exports/audiences', {})).status).toBe(401);
  });

  test('answers 302 to a presigned-style URL that it serves, with the generated rows; unpadded paths work', async () => {
    clock += 120_000;
    const hour = floorHour(clock) - 5 * HOUR_MS;
    const response = await get(logPath(hour, false));
    expect(response.status).toBe(302);
    const location = response.headers.get('location') as string;
    expect(location).toMatch(/Expires=\d+&Signature=/);
    const file = await fetch(location);
    expect(gunzipSync(Buffer.from(await file.arrayBuffer())).toString()).toBe(
      serializeRows(logRows(simulator.dataset, app(), hour)),
    );
  });

  test('answers 404 for an hour that is not complete yet and for an unknown app', async () => {
    clock += 120_000;
    expect((await get(logPath(floorHour(clock)))).status).toBe(404);
    expect((await get('/v1/exports/analytics/logs/abc-def/2026/01/01/00')).status).toBe(404);
  });

  test('a URL past its expiry or with a tampered signature answers 403', async () => {
    clock += 120_000;
    const location = (await get(logPath(floorHour(clock) - 5 * HOUR_MS))).headers.get('location') as string;
    // Flip the signature's first character to a different one (a fixed replacement equals it now and then).
    const tampered = location.replace(/Signature=(.)/, (_, first: string) => `Signature=${first === 'A' ? 'B' : 'A'}`);
    expect(tampered).not.toBe(location);
    expect((await fetch(tampered)).status).toBe(403);
    clock += 61_000;
    const expired = await fetch(location);
    expect(expired.status).toBe(403);
    expect(await expired.text()).toMatch(/Request has expired/);
  });

  test('enforces the per-key rate with 429 and a Retry-After', async () => {
    clock += 120_000;
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await get('/v1/exports/profiles')).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    const throttled = await get('/v1/exports/profiles');
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(0);
    clock += 61_000;
    expect((await get('/v1/exports/profiles')).status).toBe(200);
  });

  test('each profile_changes 302 consumes a change set, downloaded or not', async () => {
    clock += 120_000;
    const before = simulator.changeSetsConsumed('6012');
    const first = (await get('/v1/exports/profiles/6012/profile_changes')).headers.get('location');
    const second = (await get('/v1/exports/profiles/6012/profile_changes')).headers.get('location');
    expect(first).not.toBe(second);
    expect(simulator.changeSetsConsumed('6012')).toBe(before + 2);
  });

  test('records every request, with whether Authorization was sent', async () => {
    clock += 120_000;
    const mark = simulator.requests.length;
    await get('/v1/exports/audiences');
    expect(simulator.requests.slice(mark)).toMatchObject([
      { kind: 'api', path: '/v1/exports/audiences', status: 200, authorization: true },
    ]);
  });

  test('takes faults through its admin API', async () => {
    clock += 120_000;
    const added = await fetch(`${simulator.url}/_admin/faults`, {
      method: 'POST',
      body: JSON.stringify({ kind: 'server_error', count: 1 }),
    });
    expect(added.status).toBe(201);
    expect((await get('/v1/exports/audiences')).status).toBe(500);
    expect((await get('/v1/exports/audiences')).status).toBe(200);
    const rejected = await fetch(`${simulator.url}/_admin/faults`, {
      method: 'POST',
      body: JSON.stringify({ kind: 'meteor' }),
    });
    expect(rejected.status).toBe(400);
  });
});

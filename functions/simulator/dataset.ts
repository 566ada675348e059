import { DAY_MS, HOUR_MS } from '../core/hours.js';
import type { IdentifierType } from '../core/identifiers.js';
import { intBetween, pick, randomFor, uuidFrom } from './random.js';

/**
 * The simulator's world: apps with a stable population of devices, audiences over that population, and a profile
 * database of its customers. Everything is derived from the seed, so tests can recompute exactly what was served.
 */

export interface SimulatedAudience {
  readonly audienceId: string;
  readonly name: string;
  readonly identifierTypes: readonly IdentifierType[];
}

export interface SimulatedProfileDb {
  readonly profileDbId: string;
  readonly name: string;
}

export interface DatasetOptions {
  readonly seed: string;
  readonly apps: readonly string[];
  readonly audiences: readonly SimulatedAudience[];
  readonly profileDbs: readonly SimulatedProfileDb[];
  /** Devices per app. */
  readonly devicesPerApp: number;
  /** Rows per log hour: uniform in [min, max]. */
  readonly rowsPerHour: { readonly min: number; readonly max: number };
}

export interface Device {
  readonly index: number;
  readonly deviceUuid: string;
  readonly installUuid: string;
  readonly advertisingId: string;
  readonly platform: 'iPhone' | 'iPad' | 'Android';
  readonly customerId: string | undefined;
  readonly email: string | undefined;
  readonly language: string;
  readonly country: string;
  /** Chance that the device opens the app on a given day (0.05 to 0.9): a few come back daily, most now and then. */
  readonly dailyActivity: number;
  readonly appVersion: string;
  readonly osVersion: string;
  readonly model: string;
  readonly carrier: string;
  /** Seconds east of UTC, as the SDK reports it (`device_timezone`), following the country. */
  readonly timezoneSeconds: number;
  readonly lat: number;
  readonly lng: number;
  readonly limitAdvertising: boolean;
  readonly pushStatus: string;
}

/** Demo app IDs in Localytics' documented format: 23 hex digits, then four dash-separated hex groups. */
export const DEMO_APPS = [
  '1bea53c5f15a26dff0a078f-2eedf7d6-fd41-11e3-4735-00a426b17dd8',
  '91e6f7bf1c6004b029c3082-602f5774-ae2b-11e2-0c2c-004a77f8b47f',
] as const;

export const DEFAULT_DATASET: DatasetOptions = {
  seed: 'localytics-demo',
  apps: DEMO_APPS,
  audiences: [
    { audienceId: '153829', name: 'Purchased in the last 7 days', identifierTypes: ['idfa', 'gaid', 'email'] },
    { audienceId: '4478', name: 'Push opted out', identifierTypes: ['customer_id'] },
  ],
  profileDbs: [{ profileDbId: '6012', name: 'WeatherVane org profiles' }],
  devicesPerApp: 60,
  rowsPerHour: { min: 20, max: 60 },
};

/** Audiences and profiles are generated daily at 8 a.m. EST (13:00 UTC), as the documentation says. */
export const GENERATION_HOUR_UTC = 13;

/** Event names with their relative frequency: a few common events and rarer ones, as in a real app. */
const EVENT_NAMES: readonly (readonly [string, number])[] = [
  ['viewForecast', 40],
  ['updateWeather', 30],
  ['shareForecast', 12],
  ['openSettings', 10],
  ['purchasePremium', 8],
];
/** App versions in use, newest first, with the share of devices on each. */
const APP_VERSIONS: readonly (readonly [string, number])[] = [
  ['4.4.2', 50],
  ['4.4.1', 30],
  ['4.3.0', 20],
];
const CARRIERS = ['AT&T', 'Verizon', 'T-Mobile', 'Vodafone', 'Orange'];
const COUNTRIES = ['us', 'us', 'us', 'gb', 'fr', 'de', 'es'];
const LANGUAGES = ['en', 'en', 'en', 'fr', 'de', 'es'];
const PLACES = ['Boston', 'Paris', 'Mohit’s Crib', 'Rejuvenation Room', 'Berlin', 'Madrid'];
const PUSH_STATUS = ['Provisional', 'Disabled', 'Enabled (Delivered Quietly)', 'Enabled (Prominent)'];
const MODELS = {
  iPhone: ['iPhone 15', 'iPhone 14', 'iPhone SE (3rd gen)'],
  iPad: ['iPad mini (2nd gen)', 'iPad Air (5th gen)'],
  Android: ['Pixel 8', 'Galaxy S23', 'Pixel 7a'],
} as const;
/** UTC offsets (seconds) of each country's devices: the US spans four zones. */
const TIMEZONES: Record<string, readonly number[]> = {
  us: [-18_000, -21_600, -25_200, -28_800],
  gb: [0],
  fr: [3_600],
  de: [3_600],
  es: [3_600],
};
/** Share of sessions that end with a close row; the others were killed or never reported one. */
const CLOSE_SHARE = 0.9;

export function devicesOf(options: DatasetOptions, appUuid: string): Device[] {
  return Array.from({ length: options.devicesPerApp }, (_, index) => {
    const random = randomFor(options.seed, 'device', appUuid, index);
    const platform = pick(random, ['iPhone', 'iPad', 'Android'] as const);
    const deviceUuid = uuidFrom(random).toLowerCase();
    const installUuid = uuidFrom(random).toLowerCase();
    const advertisingId = uuidFrom(random);
    const known = random() < 0.7;
    const customerNumber = `${appUuid.slice(0, 6)}-${String(index).padStart(4, '0')}`;
    const email = known && random() < 0.8 ? `user-${customerNumber}@example.com` : undefined;
    const language = pick(random, LANGUAGES);
    const country = pick(random, COUNTRIES);
    // Drawn after the fields above, so that audiences and profiles (which use only those) stay as they were.
    const ios = platform !== 'Android';
    return {
      index,
      deviceUuid,
      installUuid,
      advertisingId: platform === 'Android' ? advertisingId.toLowerCase() : advertisingId,
      platform,
      customerId: known ? `cust-${customerNumber}` : undefined,
      email,
      language,
      country,
      dailyActivity: 0.05 + 0.85 * random() ** 2,
      appVersion: weightedPick(random, APP_VERSIONS),
      osVersion: ios ? pick(random, ['17.4', '17.5', '18.0']) : pick(random, ['13', '14']),
      model: pick(random, MODELS[platform]),
      carrier: pick(random, CARRIERS),
      timezoneSeconds: pick(random, TIMEZONES[country] ?? [0]),
      lat: Math.round((25 + random() * 20) * 1e5) / 1e5,
      lng: Math.round((-120 + random() * 60) * 1e5) / 1e5,
      limitAdvertising: random() < 0.2,
      pushStatus: pick(random, PUSH_STATUS),
    };
  });
}

function weightedPick(random: () => number, items: readonly (readonly [string, number])[]): string {
  const total = items.reduce((sum, [, weight]) => sum + weight, 0);
  let at = random() * total;
  for (const [item, weight] of items) {
    at -= weight;
    if (at < 0) return item;
  }
  return (items.at(-1) as readonly [string, number])[0];
}

/** One raw log row, with the fields of the documentation's sample plus `at_millis` (v1.1) and `push_status` (v1.2). */
export type LogRow = Record<string, unknown>;

/**
 * The rows of one app-hour, in time order: sessions of the devices active that day (a device's chance per day is its
 * `dailyActivity`, and active devices open more sessions the more active they are), each a start row (`s`), its
 * events (`e`) and, for most, a close row (`c`) at the session's end. Session lengths are log-normal (median about
 * 2.5 minutes); a session starts and ends within its hour. Exactly `rowsPerHour` rows: the last session may be cut.
 */
export function logRows(options: DatasetOptions, appUuid: string, hour: number): LogRow[] {
  const random = randomFor(options.seed, 'hour', appUuid, hour);
  const devices = devicesOf(options, appUuid);
  const day = Math.floor(hour / DAY_MS);
  const active = devices.filter(
    (device) => randomFor(options.seed, 'active', appUuid, device.index, day)() < device.dailyActivity,
  );
  const pool = active.length > 0 ? active : devices;
  const target = intBetween(random, options.rowsPerHour.min, options.rowsPerHour.max);
  const rows: LogRow[] = [];
  while (rows.length < target) {
    const device = activityWeighted(random, pool);
    const sessionUuid = uuidFrom(random).toLowerCase();
    const lengthMs = sessionLengthMs(random);
    const start = hour + Math.floor(random() * (HOUR_MS - lengthMs));
    const events = Math.min(12, Math.floor(-Math.log(1 - random()) * 2.5));
    const times = [
      start,
      ...Array.from({ length: events }, () => start + 1 + Math.floor(random() * (lengthMs - 1))).sort((a, b) => a - b),
    ];
    if (random() < CLOSE_SHARE) times.push(start + lengthMs);
    const base = deviceFields(device, appUuid, random);
    for (let i = 0; i < times.length && rows.length < target; i++) {
      const at = times[i] as number;
      const type = i === 0 ? 's' : i <= events ? 'e' : 'c';
      const row: LogRow = {
        ...base,
        uuid: uuidFrom(random).toLowerCase(),
        session_uuid: sessionUuid,
        type,
        at: new Date(at).toISOString().slice(0, 19).replace('T', ' '),
        at_millis: at,
        nth: intBetween(random, 1, 500),
      };
      if (type === 'e') row.name = weightedPick(random, EVENT_NAMES);
      if (type === 's') row.sec_since_last_session = intBetween(random, 60, 200_000);
      rows.push(row);
    }
  }
  return rows.sort((a, b) => (a.at_millis as number) - (b.at_millis as number));
}

/** A device of the pool, the more likely the more active it is. */
function activityWeighted(random: () => number, pool: readonly Device[]): Device {
  const total = pool.reduce((sum, device) => sum + device.dailyActivity, 0);
  let at = random() * total;
  for (const device of pool) {
    at -= device.dailyActivity;
    if (at < 0) return device;
  }
  return pool.at(-1) as Device;
}

/** Log-normal session length (median 150 s), from 5 seconds to 40 minutes, in whole milliseconds. */
function sessionLengthMs(random: () => number): number {
  const normal = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const seconds = Math.min(2_400, Math.max(5, 150 * Math.exp(normal)));
  return Math.round(seconds * 1000);
}

function deviceFields(device: Device, appUuid: string, random: () => number): LogRow {
  const ios = device.platform !== 'Android';
  const fields: LogRow = {
    device_uuid: device.deviceUuid,
    os_ver: device.osVersion,
    lng: device.lng,
    lat: device.lat,
    device_new: random() < 0.05,
    carrier: device.carrier,
    model: device.model,
    browser: ios ? 'CFNetwork 758' : 'okhttp',
    app_ver: device.appVersion,
    device_timezone: device.timezoneSeconds,
    advertising_id: device.advertisingId,
    country: device.country,
    language: device.language,
    bundle_id: 'com.localytics.WeatherVane',
    user_type: device.customerId ? 'known' : 'anonymous',
    app: appUuid,
    install_uuid: device.installUuid,
    library_ver: ios ? 'iOSa_6.3.0' : 'androida_6.3.0',
    platform: device.platform,
    jailbroken: false,
    limit_advertising: device.limitAdvertising,
    birth_date: 19_000 + device.index,
    push_status: device.pushStatus,
  };
  if (device.customerId) fields.customer_ids = { customer_id: device.customerId };
  return fields;
}

export function serializeRows(rows: readonly Record<string, unknown>[]): string {
  return rows.map((row) => `${JSON.stringify(row)}\n`).join('');
}

/** The latest daily generation time at or before `now` (13:00 UTC). */
export function latestGeneration(now: number): number {
  const todayGeneration = Math.floor(now / DAY_MS) * DAY_MS + GENERATION_HOUR_UTC * HOUR_MS;
  return todayGeneration <= now ? todayGeneration : todayGeneration - DAY_MS;
}

const IDENTIFIER_COLUMN: Record<IdentifierType, string> = {
  idfa: 'IDFA',
  gaid: 'GAID',
  email: 'EMAIL',
  customer_id: 'CUSTOMER_ID',
};

/** Rows of one audience file, for one identifier type and one generation. */
export function audienceRows(
  options: DatasetOptions,
  audienceId: string,
  identifierType: IdentifierType,
  generation: number,
): Record<string, string>[] {
  const rows: Record<string, string>[] = [];
  for (const appUuid of options.apps) {
    for (const device of devicesOf(options, appUuid)) {
      const member = randomFor(options.seed, 'member', audienceId, appUuid, device.index, generation)() < 0.35;
      if (!member) continue;
      const value = identifierOf(device, identifierType);
      if (value) rows.push({ [IDENTIFIER_COLUMN[identifierType]]: value });
    }
  }
  return rows;
}

function identifierOf(device: Device, identifierType: IdentifierType): string | undefined {
  switch (identifierType) {
    case 'idfa':
      return device.platform === 'Android' ? undefined : device.advertisingId;
    case 'gaid':
      return device.platform === 'Android' ? device.advertisingId : undefined;
    case 'email':
      return device.email;
    case 'customer_id':
      return device.customerId;
  }
}

/** Rows of a full profile snapshot at one generation: one per known customer. */
export function profileRows(options: DatasetOptions, profileDbId: string, generation: number) {
  const rows: Record<string, unknown>[] = [];
  for (const appUuid of options.apps) {
    for (const device of devicesOf(options, appUuid)) {
      if (!device.customerId) continue;
      const random = randomFor(options.seed, 'profile', profileDbId, device.customerId, generation);
      rows.push({
        '_ll.raw_customer_id': device.customerId,
        '_ll.language': device.language,
        '_ll.country': device.country,
        '_ll.email': device.email ?? null,
        favorite_place: pick(random, PLACES),
        profiledb_id: Number(profileDbId),
      });
    }
  }
  return rows;
}

/** Rows of the `sequence`-th change set (1-based) of a profile database. */
export function profileChangeRows(options: DatasetOptions, profileDbId: string, sequence: number) {
  const random = randomFor(options.seed, 'changes', profileDbId, sequence);
  const customers = options.apps.flatMap((appUuid) =>
    devicesOf(options, appUuid).flatMap((device) => (device.customerId ? [device.customerId] : [])),
  );
  const count = intBetween(random, 5, 15);
  return Array.from({ length: count }, () => {
    const row: Record<string, unknown> = {
      profile: { '_ll.raw_customer_id': pick(random, customers), profiledb_id: Number(profileDbId) },
    };
    const kind = random();
    if (kind < 0.7) row.updates = { favorite_place: pick(random, PLACES), '_ll.country': pick(random, COUNTRIES) };
    if (kind > 0.5) row.deletes = { attributes: ['some_attrib1'] };
    row.change_sequence = sequence;
    return row;
  });
}

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

const EVENT_NAMES = ['updateWeather', 'viewForecast', 'shareForecast', 'purchasePremium', 'openSettings'];
const CARRIERS = ['AT&T', 'Verizon', 'T-Mobile', 'Vodafone', 'Orange'];
const COUNTRIES = ['us', 'us', 'us', 'gb', 'fr', 'de', 'es'];
const LANGUAGES = ['en', 'en', 'en', 'fr', 'de', 'es'];
const PLACES = ['Boston', 'Paris', 'Mohit’s Crib', 'Rejuvenation Room', 'Berlin', 'Madrid'];
const PUSH_STATUS = ['Provisional', 'Disabled', 'Enabled (Delivered Quietly)', 'Enabled (Prominent)'];

export function devicesOf(options: DatasetOptions, appUuid: string): Device[] {
  return Array.from({ length: options.devicesPerApp }, (_, index) => {
    const random = randomFor(options.seed, 'device', appUuid, index);
    const platform = pick(random, ['iPhone', 'iPad', 'Android'] as const);
    const deviceUuid = uuidFrom(random).toLowerCase();
    const installUuid = uuidFrom(random).toLowerCase();
    const advertisingId = uuidFrom(random);
    const known = random() < 0.7;
    const customerNumber = `${appUuid.slice(0, 6)}-${String(index).padStart(4, '0')}`;
    return {
      index,
      deviceUuid,
      installUuid,
      advertisingId: platform === 'Android' ? advertisingId.toLowerCase() : advertisingId,
      platform,
      customerId: known ? `cust-${customerNumber}` : undefined,
      email: known && random() < 0.8 ? `user-${customerNumber}@example.com` : undefined,
      language: pick(random, LANGUAGES),
      country: pick(random, COUNTRIES),
    };
  });
}

/** One raw log row, with the fields of the documentation's sample plus `at_millis` (v1.1) and `push_status` (v1.2). */
export type LogRow = Record<string, unknown>;

/** The rows of one app-hour, in time order. */
export function logRows(options: DatasetOptions, appUuid: string, hour: number): LogRow[] {
  const random = randomFor(options.seed, 'hour', appUuid, hour);
  const devices = devicesOf(options, appUuid);
  const target = intBetween(random, options.rowsPerHour.min, options.rowsPerHour.max);
  const rows: LogRow[] = [];
  while (rows.length < target) {
    const device = pick(random, devices);
    const sessionUuid = uuidFrom(random).toLowerCase();
    const start = hour + Math.floor(random() * (HOUR_MS - 120_000));
    const events = intBetween(random, 1, 4);
    const base = deviceFields(device, appUuid, random);
    const times = Array.from({ length: events + 2 }, (_, i) => start + i * intBetween(random, 1_000, 20_000));
    for (let i = 0; i < times.length && rows.length < target; i++) {
      const at = times[i] as number;
      const type = i === 0 ? 's' : i === times.length - 1 ? 'c' : 'e';
      const row: LogRow = {
        ...base,
        uuid: uuidFrom(random).toLowerCase(),
        session_uuid: sessionUuid,
        type,
        at: new Date(at).toISOString().slice(0, 19).replace('T', ' '),
        at_millis: at,
        nth: intBetween(random, 1, 500),
      };
      if (type === 'e') row.name = pick(random, EVENT_NAMES);
      if (type === 's') row.sec_since_last_session = intBetween(random, 60, 200_000);
      rows.push(row);
    }
  }
  return rows.sort((a, b) => (a.at_millis as number) - (b.at_millis as number));
}

function deviceFields(device: Device, appUuid: string, random: () => number): LogRow {
  const ios = device.platform !== 'Android';
  const fields: LogRow = {
    device_uuid: device.deviceUuid,
    os_ver: ios ? '17.4' : '14',
    lng: Math.round((-120 + random() * 60) * 1e5) / 1e5,
    lat: Math.round((25 + random() * 20) * 1e5) / 1e5,
    device_new: random() < 0.05,
    carrier: pick(random, CARRIERS),
    model: ios ? (device.platform === 'iPad' ? 'iPad mini (2nd gen)' : 'iPhone 15') : 'Pixel 8',
    browser: ios ? 'CFNetwork 758' : 'okhttp',
    app_ver: '1.1.3',
    device_timezone: -18000,
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
    limit_advertising: random() < 0.2,
    birth_date: 19_000 + device.index,
    push_status: pick(random, PUSH_STATUS),
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

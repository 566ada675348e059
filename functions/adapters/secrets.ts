import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import * as z from 'zod/mini';
import { SecretError } from '../core/errors.js';
import type { Credentials, SecretProvider } from '../core/ports.js';
import { describeError, registerSecret } from '../core/redact.js';
import '../core/schema.js';

const secretSchema = z.object({
  apiKey: z.string().check(z.minLength(1)),
  apiSecret: z.string().check(z.minLength(1)),
});

/** Credentials given directly (from `LOCALYTICS_API_KEY` / `LOCALYTICS_API_SECRET`). */
export class StaticSecretProvider implements SecretProvider {
  constructor(private readonly credentials: Credentials) {
    registerSecret(credentials.apiKey);
    registerSecret(credentials.apiSecret);
  }

  async getCredentials(): Promise<Credentials> {
    return this.credentials;
  }
}

export interface SecretsManagerProviderOptions {
  readonly secretId: string;
  readonly client?: SecretsManagerClient;
  /** How long a fetched secret is reused, ms. Default 5 minutes. */
  readonly ttlMs?: number;
  readonly now?: () => number;
}

/** Reads the JSON secret `{"apiKey","apiSecret"}` from AWS Secrets Manager, cached for `ttlMs`. */
export class SecretsManagerSecretProvider implements SecretProvider {
  private readonly client: SecretsManagerClient;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private cached: { credentials: Credentials; at: number } | undefined;
  private inflight: Promise<Credentials> | undefined;

  constructor(private readonly options: SecretsManagerProviderOptions) {
    this.client = options.client ?? new SecretsManagerClient({});
    this.ttlMs = options.ttlMs ?? 5 * 60_000;
    this.now = options.now ?? Date.now;
  }

  async getCredentials(): Promise<Credentials> {
    if (this.cached && this.now() - this.cached.at < this.ttlMs) return this.cached.credentials;
    this.inflight ??= this.fetch().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async fetch(): Promise<Credentials> {
    const id = this.options.secretId;
    let text: string | undefined;
    try {
      const response = await this.client.send(new GetSecretValueCommand({ SecretId: id }));
      text = response.SecretString;
    } catch (error) {
      throw new SecretError(`could not read secret ${id}: ${describeError(error)}`, { cause: error });
    }
    if (!text) throw new SecretError(`secret ${id} has no SecretString (a JSON {"apiKey","apiSecret"} is expected)`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new SecretError(`secret ${id} is not JSON (expected {"apiKey","apiSecret"})`);
    }
    const result = secretSchema.safeParse(parsed);
    if (!result.success) {
      throw new SecretError(`secret ${id} must be JSON with non-empty string fields "apiKey" and "apiSecret"`);
    }
    registerSecret(result.data.apiKey);
    registerSecret(result.data.apiSecret);
    this.cached = { credentials: result.data, at: this.now() };
    return result.data;
  }
}

/**
 * Issue 21, items 2 and 3: what the client refuses to do with its credentials, and what it never repeats of an
 * answer.
 */
import http from 'node:http';
import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { LocalyticsClient } from '../../functions/adapters/localytics-client.js';
import { fromPowertools } from '../../functions/adapters/powertools-logger.js';
import { ApiResponseError, ConfigError } from '../../functions/core/errors.js';
import { describeError } from '../../functions/core/redact.js';
import { InProcessRequestBudget } from '../../functions/core/request-budget.js';
import { closeServer, listenOnLoopback } from '../support/loopback-server.js';

const credentials = { apiKey: 'KEY-9f8e7d6c5b4a', apiSecret: 'SECRET-0a1b2c3d4e5f' };
const basicToken = Buffer.from(`${credentials.apiKey}:${credentials.apiSecret}`).toString('base64');

function client(apiUrl: string) {
  return new LocalyticsClient({ apiUrl, credentials, budget: new InProcessRequestBudget({ ratePerMinute: 6000 }) });
}

describe('the API URL (item 2): the Basic credentials never travel unencrypted, whichever entry point built the client', () => {
  test.each([
    'http://api.example.com',
    'http://api.localytics.com:80/',
    'http://10.0.0.5:8080',
    'ftp://api.example.com',
  ])('refuses %s', (apiUrl) => {
    expect(() => client(apiUrl)).toThrow(ConfigError);
    expect(() => client(apiUrl)).toThrow(/must use https \(plain http is allowed only on loopback/);
  });

  test('refuses a URL carrying user info, without repeating it', () => {
    const error = (() => {
      try {
        client('https://someone:hunter22@api.example.com');
      } catch (caught) {
        return caught as Error;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error?.message).toMatch(/must not carry credentials/);
    expect(error?.message).not.toContain('hunter22');
  });

  test('refuses a text that is not a URL', () => {
    expect(() => client('api.localytics.com')).toThrow(/is not a URL/);
  });

  test.each(['https://api.localytics.com', 'http://127.0.0.1:8080', 'http://localhost:9000/', 'http://[::1]:8080'])(
    'accepts %s',
    (apiUrl) => {
      expect(client(apiUrl).apiUrl).toBe(apiUrl.replace(/\/+$/, ''));
    },
  );
});

describe('a 200 list answer that is not JSON (item 3) is reported by length and content type only', () => {
  let server: http.Server | undefined;
  afterEach(async () => {
    if (server) await closeServer(server);
    server = undefined;
  });

  async function answering(contentType: string, body: string) {
    server = http.createServer((_request, response) => {
      response.writeHead(200, { 'content-type': contentType });
      response.end(body);
    });
    return client(await listenOnLoopback(server));
  }

  test('a body echoing the Authorization header leaves no part of it in the error', async () => {
    // V8's JSON.parse error quoted the body's first characters: `S0VZLTlmOG`, base64 of the key's first 7.
    const body = `${basicToken} was sent`;
    const error = await (await answering('text/plain; charset=utf-8', body)).listAudiences().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiResponseError);
    const message = describeError(error);
    expect(message).toBe(
      `/v1/exports/audiences did not answer JSON: 200 with ${Buffer.byteLength(body)} bytes of text/plain`,
    );
    expect(message).not.toContain(basicToken.slice(0, 10));
  });

  test('an HTML page says so', async () => {
    const error = await (await answering('text/html', '<html><body>Sign in</body></html>'))
      .listProfiles()
      .catch((e: unknown) => e);
    expect(describeError(error)).toBe(
      '/v1/exports/profiles did not answer JSON (got an HTML page): 200 with 33 bytes of text/html',
    );
  });

  test('a content type that is not a plain media type is not repeated either', async () => {
    const error = await (await answering(`text/${basicToken.slice(0, 12)}"x y`, 'nope'))
      .listAudiences()
      .catch((e: unknown) => e);
    expect(describeError(error)).toBe(
      '/v1/exports/audiences did not answer JSON: 200 with 4 bytes of an unreadable content type',
    );
  });

  test('a captive portal answering a URL (trigger 2 of item 1) gives one valid log line', async () => {
    const error = await (await answering('text/plain', 'http://portal.example/login?next="/v1"'))
      .listAudiences()
      .catch((e: unknown) => e);
    let printed = '';
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      printed += String(chunk);
      return true;
    });
    try {
      const logger = fromPowertools(new PowertoolsLogger({ serviceName: 'test' }));
      logger.error('export list failed', { endpoint: '/v1/exports/audiences', reason: describeError(error) });
    } finally {
      stderr.mockRestore();
    }
    expect(JSON.parse(printed)).toMatchObject({ message: 'export list failed', reason: describeError(error) });
  });
});

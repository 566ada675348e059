import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback stand-in for AWS Secrets Manager's GetSecretValue (JSON 1.1 protocol), for code that reaches it through
 * the real SDK with an endpoint override (`AWS_ENDPOINT_URL_SECRETS_MANAGER`). Records the secret ids asked for.
 */
export class FakeSecretsManager {
  readonly requests: { target: string; secretId: string }[] = [];
  private readonly secrets = new Map<string, string>();
  private readonly server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const target = String(request.headers['x-amz-target'] ?? '');
      const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as { SecretId?: string };
      const secretId = body.SecretId ?? '';
      this.requests.push({ target, secretId });
      const value = this.secrets.get(secretId);
      response.setHeader('content-type', 'application/x-amz-json-1.1');
      if (target !== 'secretsmanager.GetSecretValue' || value === undefined) {
        response.statusCode = 400;
        response.end(
          JSON.stringify({
            __type: 'ResourceNotFoundException',
            message: "Secrets Manager can't find the specified secret.",
          }),
        );
        return;
      }
      response.end(
        JSON.stringify({ ARN: secretId, Name: secretId, SecretString: value, VersionId: 'v1', CreatedDate: 0 }),
      );
    });
  });
  url = '';

  put(secretId: string, value: string): void {
    this.secrets.set(secretId, value);
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

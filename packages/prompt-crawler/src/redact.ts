/**
 * Keeps the API key out of everything the crawler writes or prints. Every output line and message
 * passes through `redact`; error objects from the HTTP client are never serialized whole (they carry
 * headers and request options), only the fields `describeError` picks.
 */
export const REDACTED = '[REDACTED]';

export class Redactor {
  private readonly secrets: string[];
  constructor(secrets: ReadonlyArray<string | undefined>) {
    // very short "keys" (e.g. 'x' for local servers) would shred ordinary text; they are not secrets
    this.secrets = secrets.filter((s): s is string => typeof s === 'string' && s.length >= 6).sort((a, b) => b.length - a.length);
  }

  redact(text: string): string {
    let out = text;
    for (const s of this.secrets) if (out.includes(s)) out = out.split(s).join(REDACTED);
    // any bearer credential echoed back by a server or proxy
    return out.replace(/(Bearer\s+)[A-Za-z0-9._~+/=-]{6,}/gi, `$1${REDACTED}`);
  }
}

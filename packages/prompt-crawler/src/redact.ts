/**
 * Keeps the API key out of everything the crawler writes or prints. Every output line and message
 * passes through `redact`; error objects from the HTTP client are never serialized whole (they carry
 * headers and request options), only the fields `describeError` picks.
 *
 * A key is redacted in every form it can travel in: as given (an env value may carry whitespace), trimmed
 * (what the Authorization header actually sends: header values are trimmed), JSON-escaped (as it appears
 * inside a JSON error body or one of our JSON-lines records) and percent-encoded (echoed in a URL);
 * `Bearer <anything key-like>` is redacted whatever it holds.
 */
export const REDACTED = '[REDACTED]';

export class Redactor {
  private readonly secrets: string[];
  constructor(secrets: ReadonlyArray<string | undefined>) {
    // very short "keys" (e.g. 'x' for local servers) would shred ordinary text; they are not secrets
    const forms = new Set<string>();
    for (const s of secrets) {
      if (typeof s !== 'string') continue;
      for (const v of [s, s.trim()]) {
        forms.add(v);
        forms.add(JSON.stringify(v).slice(1, -1));
        forms.add(encodeURIComponent(v));
      }
    }
    this.secrets = [...forms].filter((s) => s.trim().length >= 6).sort((a, b) => b.length - a.length);
  }

  redact(text: string): string {
    let out = text;
    for (const s of this.secrets) if (out.includes(s)) out = out.split(s).join(REDACTED);
    // any bearer credential echoed back by a server or proxy
    return out.replace(/(Bearer\s+)[A-Za-z0-9._~+/=-]{6,}/gi, `$1${REDACTED}`);
  }
}

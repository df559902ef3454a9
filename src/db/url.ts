// Connection strings carry passwords; canon never prints one. Everything that shows a
// database to a person goes through describeUrl.

export interface DbTarget {
  url: string;
  /** where the URL came from; the read URL (a replica, say) is named by the flag or variable that set it */
  source: 'DATABASE_URL' | 'embedded' | '--read-url' | 'CANON_READ_URL';
}

/** "user@host:port/db" with the password removed; never throws. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    const user = u.username ? `${decodeURIComponent(u.username)}@` : '';
    const host = u.hostname || 'localhost';
    const port = u.port || '5432';
    const db = u.pathname.replace(/^\//, '') || '(default)';
    return `${user}${host}:${port}/${db}`;
  } catch {
    return '(unparseable DATABASE_URL)';
  }
}

/** Removes any password from free text (error messages from drivers can echo the URL). */
export function redact(text: string, url?: string): string {
  let out = text.replace(/(postgres(?:ql)?:\/\/[^:/@\s]*:)[^@\s]*@/gi, '$1***@');
  if (url) {
    try {
      const pw = decodeURIComponent(new URL(url).password);
      if (pw.length >= 3) out = out.split(pw).join('***');
    } catch {
      /* unparseable url: nothing more to redact */
    }
  }
  return out;
}

/** Why `url` is not a Postgres URL (naming it as `name`), or undefined when it is one. */
export function validateUrl(url: string, name = 'DATABASE_URL'): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `${name} is not a valid URL: expected postgres://user:password@host:port/database`;
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    return `${name} has scheme "${u.protocol.replace(/:$/, '')}": expected postgres:// or postgresql://`;
  }
  if (u.port && !/^\d+$/.test(u.port)) return `${name} has an invalid port`;
  return undefined;
}

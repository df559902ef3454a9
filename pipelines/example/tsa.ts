// A local time-stamp authority: an Ed25519 key made with node:crypto on first use and kept
// under the canon home (CANON_TSA_KEY_DIR to move it). A token signs the document hash, the
// time and the entity; its key id is the SHA-256 of the public key, so a verifier can tell
// which key signed and whether it trusts that key.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface TimestampToken {
  hash: string;
  timestamp: string;
  entity_id: string;
  key_id: string;
  algorithm: 'ed25519';
  signature: string;
  public_key: string;
}

export function keyDir(): string {
  return path.resolve(process.env.CANON_TSA_KEY_DIR ?? path.join(process.env.CANON_HOME ?? '.canon', 'tsa'));
}

// Public keys parsed, with their ids, by PEM. Parsing a PEM key cost more than the Ed25519
// check itself, and verifying a token needs the key twice (its id, then the signature); a
// keyring holds a few keys, so a provenance check of many tokens parses each once.
const parsedKeys = new Map<string, { key: KeyObject; id: string }>();

/** The key and its id (sha256 of the SPKI DER, 32 hex); throws on a key that does not parse. */
function publicKey(publicKeyPem: string): { key: KeyObject; id: string } {
  let k = parsedKeys.get(publicKeyPem);
  if (!k) {
    const key = createPublicKey(publicKeyPem);
    k = {
      key,
      id: createHash('sha256')
        .update(key.export({ type: 'spki', format: 'der' }))
        .digest('hex')
        .slice(0, 32),
    };
    if (parsedKeys.size >= 64) parsedKeys.clear();
    parsedKeys.set(publicKeyPem, k);
  }
  return k;
}

export function keyId(publicKeyPem: string): string {
  return publicKey(publicKeyPem).id;
}

/** Loads the key, creating it once; concurrent workers agree because the first writer wins. */
export function loadKey(dir = keyDir()): { privateKey: KeyObject; publicPem: string; keyId: string } {
  const priv = path.join(dir, 'tsa-key.pem');
  if (!fs.existsSync(priv)) {
    fs.mkdirSync(dir, { recursive: true });
    const { privateKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    try {
      fs.writeFileSync(priv, pem, { flag: 'wx', mode: 0o600 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  let pem = '';
  for (let i = 0; i < 50 && !pem.includes('END PRIVATE KEY'); i++) pem = fs.readFileSync(priv, 'utf8');
  const privateKey = createPrivateKey(pem);
  const publicPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }) as string;
  const id = keyId(publicPem);
  const pubFile = path.join(dir, `${id}.pub.pem`);
  if (!fs.existsSync(pubFile)) fs.writeFileSync(pubFile, publicPem);
  return { privateKey, publicPem, keyId: id };
}

/** What a token's signature covers. */
export const message = (t: Pick<TimestampToken, 'hash' | 'timestamp' | 'entity_id'>) =>
  Buffer.from(`canon-tsa-v1|${t.hash}|${t.timestamp}|${t.entity_id}`);

export function stamp(hash: string, entityId: string, dir = keyDir()): TimestampToken {
  const k = loadKey(dir);
  const body = { hash, timestamp: new Date().toISOString(), entity_id: entityId };
  const signature = sign(null, message(body), k.privateKey).toString('base64');
  return { ...body, key_id: k.keyId, algorithm: 'ed25519', signature, public_key: k.publicPem };
}

export interface TokenCheck {
  signature_valid: boolean;
  key_id_matches: boolean;
  key_trusted: boolean;
}

/** Checks a token offline: the signature, that key_id names the embedded key, and whether that key is in the local keyring. */
export function verifyToken(t: TimestampToken, dir = keyDir()): TokenCheck {
  let signature_valid = false;
  let key_id_matches = false;
  try {
    const k = publicKey(t.public_key);
    key_id_matches = k.id === t.key_id;
    signature_valid = verify(null, message(t), k.key, Buffer.from(t.signature, 'base64'));
  } catch {
    signature_valid = false;
  }
  const key_trusted = fs.existsSync(path.join(dir, `${t.key_id}.pub.pem`));
  return { signature_valid, key_id_matches, key_trusted };
}

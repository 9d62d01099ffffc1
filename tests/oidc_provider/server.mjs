// Test-only OpenID Provider: panva's certified `oidc-provider`, configured for the idp_authorizer
// conformance tests. Started and stopped by tests/oidc_op.py; never used in production.
//
//   node server.mjs --port 0 --jwks /path/to/private-jwks.json [--admin-token TOKEN]
//   (or env OP_PORT, OP_JWKS, OP_ADMIN_TOKEN)
//
// * Listens on 127.0.0.1 only. `--port 0` picks a free port. The issuer is exactly
//   `http://127.0.0.1:<port>` (no trailing slash).
// * When listening it prints one line to stdout:  OIDC_OP_READY {"issuer":..., "port":..., "pid":...}
// * It exits when stdin reaches EOF (the parent closed it or died), when the parent process goes
//   away (re-parenting is polled), and on SIGTERM / SIGINT.
// * Resources (RFC 8707 `resource` parameter), all with scopes `read write admin`:
//     urn:test:rs256  urn:test:es256  urn:test:ps256   RFC 9068 JWT access tokens signed with that alg
//     urn:test:opaque                                    opaque access tokens (introspect / revoke)
//     urn:test:short                                     RS256 JWT, 2 s lifetime
//     urn:test:<kind>:ttl:<N>                           any kind above with an N-second lifetime
//   The JWT `aud` is the resource indicator itself (a string).
// * Test-only admin endpoint (needs header `x-test-admin: <admin token>`):
//     POST /__test__/jwks   body: a private JWKS {"keys": [...]}. Builds a new Provider with those
//                           signing keys and swaps it in at runtime. The token store is shared across
//                           swaps, so opaque tokens minted before the swap stay introspectable.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    jwks: { type: 'string' },
    'admin-token': { type: 'string' },
  },
});

const port = Number(args.port ?? process.env.OP_PORT ?? 0);
const jwksPath = args.jwks ?? process.env.OP_JWKS;
const adminToken = args['admin-token'] ?? process.env.OP_ADMIN_TOKEN ?? '';
if (!jwksPath) {
  process.stderr.write('server.mjs: --jwks (or OP_JWKS) is required\n');
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// Lifetime: never outlive the parent.
const parentPid = process.ppid;
function shutdown(code = 0) {
  process.exit(code);
}
process.stdin.on('end', () => shutdown(0));
process.stdin.on('close', () => shutdown(0));
process.stdin.on('error', () => shutdown(0));
process.stdin.resume();
setInterval(() => {
  if (process.ppid !== parentPid) shutdown(0);
}, 500).unref();
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
process.on('SIGHUP', () => shutdown(0));

// ---------------------------------------------------------------------------------------------
// Token storage shared by every Provider instance we build (survives key swaps). Unbounded except
// for expiry, unlike the library's MemoryAdapter (an LRU of 1000 entries).
const storage = new Map(); // key -> { payload, expiresAt (ms) | undefined }

function sget(key) {
  const entry = storage.get(key);
  if (!entry) return undefined;
  if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
    storage.delete(key);
    return undefined;
  }
  return entry.payload;
}

setInterval(() => {
  const now = Date.now();
  for (const [key, entry] of storage) {
    if (entry.expiresAt !== undefined && entry.expiresAt <= now) storage.delete(key);
  }
}, 30_000).unref();

class SharedMemoryAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + (expiresIn + 60) * 1000 : undefined;
    storage.set(this.key(id), { payload, expiresAt });
    if (payload.grantId) {
      const gk = `grant:${payload.grantId}`;
      const members = sget(gk) ?? [];
      members.push(this.key(id));
      storage.set(gk, { payload: members, expiresAt });
    }
    if (payload.uid) storage.set(`sessionUid:${payload.uid}`, { payload: id, expiresAt });
    if (payload.userCode) storage.set(`userCode:${payload.userCode}`, { payload: id, expiresAt });
  }

  async find(id) {
    return sget(this.key(id));
  }

  async findByUid(uid) {
    const id = sget(`sessionUid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = sget(`userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const payload = sget(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    storage.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    const gk = `grant:${grantId}`;
    for (const key of sget(gk) ?? []) storage.delete(key);
    storage.delete(gk);
  }
}

// ---------------------------------------------------------------------------------------------
// Clients (the Python helper tests/oidc_op.py holds the same constants).
const ALL_SCOPES = 'read write admin';
const clients = [
  {
    client_id: 'op-basic-client',
    client_secret: 'op-basic-secret-0123456789abcdef',
    token_endpoint_auth_method: 'client_secret_basic',
    scope: ALL_SCOPES,
  },
  {
    client_id: 'op-post-client',
    client_secret: 'op-post-secret-0123456789abcdef',
    token_endpoint_auth_method: 'client_secret_post',
    scope: ALL_SCOPES,
  },
  {
    client_id: 'op-read-only-client',
    client_secret: 'op-read-only-secret-0123456789abcdef',
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'read',
  },
  {
    // RFC 6749 section 2.3.1: id and secret are form-urlencoded before base64 in Basic auth.
    client_id: 'op special:client',
    client_secret: 'sec:ret with%20+special/chars=&?',
    token_endpoint_auth_method: 'client_secret_basic',
    scope: ALL_SCOPES,
  },
].map((c) => ({
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  ...c,
}));

// ---------------------------------------------------------------------------------------------
// Resource servers.
const KINDS = {
  rs256: { accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } },
  es256: { accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } },
  ps256: { accessTokenFormat: 'jwt', jwt: { sign: { alg: 'PS256' } } },
  opaque: { accessTokenFormat: 'opaque' },
};
const DEFAULT_TTL = 600;

function resourceServerInfo(indicator) {
  if (indicator === 'urn:test:short') {
    return { ...KINDS.rs256, accessTokenTTL: 2 };
  }
  const m = /^urn:test:([a-z0-9]+)(?::ttl:([1-9][0-9]{0,5}))?$/.exec(indicator);
  if (!m || !Object.hasOwn(KINDS, m[1])) return undefined;
  return { ...KINDS[m[1]], accessTokenTTL: m[2] ? Number(m[2]) : DEFAULT_TTL };
}

// ---------------------------------------------------------------------------------------------
function loadJwks(text) {
  const jwks = JSON.parse(text);
  if (!jwks || !Array.isArray(jwks.keys) || jwks.keys.length === 0) {
    throw new Error('JWKS must be an object with a non-empty "keys" array');
  }
  return jwks;
}

function makeProvider(issuer, jwks) {
  const provider = new Provider(issuer, {
    adapter: SharedMemoryAdapter,
    clients,
    jwks,
    scopes: ['openid', 'offline_access', 'read', 'write', 'admin'],
    // Fixed cookie keys: cookies are unused here, but this silences the development warning.
    cookies: { keys: [crypto.createHash('sha256').update(issuer).digest('hex')] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, indicator) => {
          const info = resourceServerInfo(indicator);
          if (!info) throw new errors.InvalidTarget(`unknown resource ${indicator}`);
          return { scope: ALL_SCOPES, audience: indicator, ...info };
        },
      },
    },
    enabledJWA: {
      // Allow every signing alg we issue access tokens with.
      idTokenSigningAlgValues: ['RS256', 'PS256', 'ES256'],
    },
    ttl: {
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? DEFAULT_TTL,
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? DEFAULT_TTL,
    },
    findAccount: async () => undefined,
  });
  provider.on('server_error', (_ctx, err) => {
    process.stderr.write(`oidc-provider server_error: ${err?.stack ?? err}\n`);
  });
  return provider;
}

// ---------------------------------------------------------------------------------------------
let handler = null; // current provider's request listener, set once we know the port
let issuer = null;

function readBody(req, limit = 1 << 20) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
      } else {
        chunks.push(c);
      }
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

async function admin(req, res) {
  const given = String(req.headers['x-test-admin'] ?? '');
  const ok = adminToken.length > 0
    && given.length === adminToken.length
    && crypto.timingSafeEqual(Buffer.from(given), Buffer.from(adminToken));
  if (!ok) return sendJson(res, 403, { error: 'forbidden' });
  if (req.method !== 'POST' || req.url !== '/__test__/jwks') return sendJson(res, 404, { error: 'not_found' });
  try {
    const jwks = loadJwks(await readBody(req));
    const provider = makeProvider(issuer, jwks);
    handler = provider.callback();
    return sendJson(res, 200, { ok: true, kids: jwks.keys.map((k) => k.kid) });
  } catch (err) {
    return sendJson(res, 400, { error: 'invalid_jwks', error_description: String(err?.message ?? err) });
  }
}

const server = http.createServer((req, res) => {
  if (req.url?.startsWith('/__test__/')) {
    admin(req, res).catch((err) => sendJson(res, 500, { error: String(err) }));
    return;
  }
  if (!handler) {
    sendJson(res, 503, { error: 'starting' });
    return;
  }
  handler(req, res);
});
server.keepAliveTimeout = 5_000;

const initialJwks = loadJwks(fs.readFileSync(jwksPath, 'utf8'));

server.on('error', (err) => {
  process.stderr.write(`server.mjs: ${err.message}\n`);
  process.exit(1);
});

server.listen(port, '127.0.0.1', () => {
  const actualPort = server.address().port;
  issuer = `http://127.0.0.1:${actualPort}`;
  handler = makeProvider(issuer, initialJwks).callback();
  process.stdout.write(`OIDC_OP_READY ${JSON.stringify({ issuer, port: actualPort, pid: process.pid })}\n`);
});

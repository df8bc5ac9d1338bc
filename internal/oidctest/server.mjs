// A real OAuth 2.0 authorization server for authproxy's tests: panva's
// oidc-provider on 127.0.0.1 over HTTPS, configured from a JSON file that
// the Go package oidctest writes (see oidctest.go for the fields).
//
// Besides what the provider does on its own (client authentication by
// every method, its replay protection for client assertions, refresh
// token rotation, PKCE), this script adds only test plumbing:
//   - RFC 7523 jwt-bearer and RFC 8693 token-exchange grants, and the RFC
//     6749 4.3 password grant the provider lacks, registered with its
//     grant-type extension API, that check the parameters the RFCs
//     require and answer with an access token;
//   - a record of every token request (its form, how the client
//     authenticated, the decoded client assertion, the client certificate)
//     read by the Go tests from GET /__test/records;
//   - POST /__test/fail-next?status=503&count=1, which makes the next token
//     requests answer that status before the provider sees them;
//   - an interaction endpoint that logs in and consents without a page.
//
// It prints one line, "READY <port>", once it listens, and exits when its
// standard input closes, so a test process that dies cannot leave it behind.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as querystring from 'node:querystring';

import { Provider, errors } from 'oidc-provider';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const PASSWORD = 'password';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

// Warnings this test server earns on purpose (its in-memory adapter, the
// body it reads before the provider, Node 20 where the provider prefers
// 22) would only bury the provider's real complaints in a failing test's log.
const intended = ['in-memory adapter', 'already parsed request body', 'Unsupported runtime'];
const warn = console.warn.bind(console);
console.warn = (msg, ...rest) => {
  if (typeof msg === 'string' && intended.some((s) => msg.includes(s))) return;
  warn(msg, ...rest);
};

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));

const records = { token_requests: [], assertion_jtis: [], grants: [], interactions: [] };
let failNext = { status: 0, count: 0 };

// decodeJWT reads a JWT's header and claims without verifying it: the
// record says what the client sent, the provider decides whether it holds.
function decodeJWT(jwt) {
  try {
    const [h, p] = String(jwt).split('.');
    return {
      header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')),
      claims: JSON.parse(Buffer.from(p, 'base64url').toString('utf8')),
    };
  } catch {
    return { malformed: true };
  }
}

function peerCertificate(ctx) {
  const socket = ctx.req.socket;
  if (typeof socket.getPeerX509Certificate !== 'function') return undefined;
  return socket.getPeerX509Certificate();
}

// subjectSet turns a distinguished name into a set of "TYPE=value" pairs,
// so that Node's newline-separated, most-significant-first form and the
// RFC 4514 comma-separated, least-significant-first form compare equal.
function subjectSet(dn) {
  return new Set(String(dn).split(/\n|,(?=\s*[A-Za-z0-9.]+=)/).map((s) => s.trim()).filter(Boolean));
}

function sameSubject(a, b) {
  const x = subjectSet(a);
  const y = subjectSet(b);
  return x.size === y.size && [...x].every((v) => y.has(v));
}

function sanValues(cert, kind) {
  // Node writes subjectAltName as 'DNS:a, IP Address:127.0.0.1, URI:spiffe://x'.
  return String(cert.subjectAltName || '').split(', ')
    .filter((s) => s.startsWith(`${kind}:`)).map((s) => s.slice(kind.length + 1));
}

const clients = config.clients.map((c) => {
  const metadata = { ...c };
  const grants = metadata.grant_types || ['client_credentials'];
  metadata.grant_types = grants;
  if (!grants.includes('authorization_code')) {
    metadata.response_types ||= [];
    metadata.redirect_uris ||= [];
  }
  return metadata;
});

// The key comes out of generateKeyPairSync as PEM and is exported to a JWK
// from a KeyObject of its own: on Node 20, exporting the KeyObject that
// generateKeyPairSync returns can deadlock the process for good when a
// garbage collection runs during the export (the key-generation job's
// finalizer takes the mutex the export holds), which left one start in
// three hanging before READY in a full `go test ./auth`.
const { privateKey: privatePEM } = crypto.generateKeyPairSync('ec', {
  namedCurve: 'P-256',
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});
const signingKey = { ...crypto.createPrivateKey(privatePEM).export({ format: 'jwk' }), use: 'sig', alg: 'ES256', kid: 'oidctest' };

const server = https.createServer({
  key: config.tls.key,
  cert: config.tls.cert,
  ca: config.tls.client_ca,
  // Ask every client for a certificate, but let those without one in:
  // only tls_client_auth clients need one, and the provider checks it.
  requestCert: true,
  rejectUnauthorized: false,
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `https://127.0.0.1:${port}`;
  const provider = newProvider(issuer);
  server.on('request', provider.callback());
  process.stdout.write(`READY ${port}\n`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));

function newProvider(issuer) {
  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: [signingKey] },
    cookies: { keys: ['oidctest-cookie-key'] },
    scopes: ['openid', 'offline_access', ...(config.scopes || [])],
    clientDefaults: {
      grant_types: ['client_credentials'],
      id_token_signed_response_alg: 'ES256',
      response_types: [],
      redirect_uris: [],
    },
    clientAuthMethods: [
      'client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt',
      'tls_client_auth', 'none',
    ],
    enabledJWA: {
      clientAuthSigningAlgValues: [
        'HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512',
        'ES256', 'ES384', 'ES512', 'Ed25519', 'EdDSA',
      ],
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      // RFC 9449, on by default in this version; with dpop_nonces the
      // token endpoint refuses a proof without its nonce (use_dpop_nonce).
      dPoP: {
        enabled: true,
        ...(config.dpop_nonces ? { nonceSecret: crypto.randomBytes(32), requireNonce: () => true } : {}),
      },
      revocation: { enabled: true },
      mTLS: {
        enabled: true,
        tlsClientAuth: true,
        getCertificate: peerCertificate,
        certificateAuthorized: (ctx) => ctx.req.socket.authorized === true,
        certificateSubjectMatches(ctx, property, expected) {
          const cert = peerCertificate(ctx);
          switch (property) {
            case 'tls_client_auth_subject_dn': return sameSubject(cert.subject, expected);
            case 'tls_client_auth_san_dns': return sanValues(cert, 'DNS').includes(expected);
            case 'tls_client_auth_san_uri': return sanValues(cert, 'URI').includes(expected);
            case 'tls_client_auth_san_ip': return sanValues(cert, 'IP Address').includes(expected);
            case 'tls_client_auth_san_email': return sanValues(cert, 'email').includes(expected);
            default: return false;
          }
        },
      },
    },
    ttl: {
      AccessToken: config.access_token_ttl || 3600,
      ClientCredentials: config.access_token_ttl || 600,
      RefreshToken: config.refresh_token_ttl || 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
      Interaction: 600,
      Session: 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
    },
    // Rotate on every use, so the tests see that a client keeps the new
    // refresh token and that the old one is refused.
    rotateRefreshToken: true,
    // Issue a refresh token to every client allowed the grant, not only
    // to those that asked for offline_access.
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    pkce: { required: () => false },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
    // Runs after the signature and claims of a client assertion are
    // checked and before the provider's own replay check: every jti the
    // provider verified is recorded, also the one it then refuses.
    async assertJwtClientAuthClaimsAndHeader(ctx, claims, header, client) {
      records.assertion_jtis.push({ client_id: client.clientId, jti: claims.jti, alg: header.alg });
    },
  });
  provider.on('server_error', (ctx, err) => console.error('oidctest server_error:', err));

  provider.use(testEndpoints);
  provider.use(recordTokenRequests);
  provider.use(autoInteraction(provider));

  provider.registerGrantType(JWT_BEARER, jwtBearer(provider), ['assertion', 'scope', 'resource', 'audience']);
  provider.registerGrantType(TOKEN_EXCHANGE, tokenExchange(provider), [
    'subject_token', 'subject_token_type', 'actor_token', 'actor_token_type',
    'requested_token_type', 'audience', 'resource', 'scope',
  ], ['audience', 'resource']);
  provider.registerGrantType(PASSWORD, passwordGrant(provider), ['username', 'password', 'scope']);
  return provider;
}

async function testEndpoints(ctx, next) {
  if (ctx.path === '/__test/records' && ctx.method === 'GET') {
    ctx.body = records;
    return;
  }
  if (ctx.path === '/__test/fail-next' && ctx.method === 'POST') {
    failNext = { status: Number(ctx.query.status || 503), count: Number(ctx.query.count || 1) };
    ctx.status = 204;
    return;
  }
  if (ctx.path === '/__test/reset' && ctx.method === 'POST') {
    for (const k of Object.keys(records)) records[k] = [];
    ctx.status = 204;
    return;
  }
  await next();
}

async function readRaw(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

// recordTokenRequests reads the token request's form itself, so that a
// request answered with an injected 5xx is recorded too, and hands the
// text to the provider, which parses an already-read body from req.body.
async function recordTokenRequests(ctx, next) {
  if (ctx.path !== '/token' || ctx.method !== 'POST') {
    await next();
    return;
  }
  const raw = await readRaw(ctx.req);
  ctx.req.body = raw;
  const params = querystring.parse(raw);
  const cert = peerCertificate(ctx);
  const rec = {
    params,
    grant_type: params.grant_type,
    authorization: ctx.get('authorization') ? ctx.get('authorization').split(' ')[0] : undefined,
    client_cert_subject: cert ? cert.subject : undefined,
    client_cert_serial: cert ? cert.serialNumber : undefined,
    client_cert_authorized: cert ? ctx.req.socket.authorized === true : undefined,
  };
  if (params.client_assertion) rec.client_assertion = decodeJWT(params.client_assertion);
  if (ctx.get('dpop')) rec.dpop = decodeJWT(ctx.get('dpop'));
  records.token_requests.push(rec);

  if (failNext.count > 0) {
    failNext.count -= 1;
    rec.status = failNext.status;
    ctx.status = failNext.status;
    ctx.body = { error: 'temporarily_unavailable', error_description: 'oidctest: injected failure' };
    return;
  }
  try {
    await next();
  } finally {
    rec.status = ctx.status;
    rec.client_id = ctx.oidc?.client?.clientId;
    rec.auth_method = ctx.oidc?.client?.clientAuthMethod;
    if (ctx.status >= 400 && ctx.body && typeof ctx.body === 'object') rec.error = ctx.body.error;
    if (ctx.status < 300 && ctx.body && typeof ctx.body === 'object') rec.token_type = ctx.body.token_type;
  }
}

// The auto-approving login and consent: the test plays the browser, and
// every interaction ends as if the user "test-user" logged in and granted
// whatever the client asked for.
function autoInteraction(provider) {
  return async (ctx, next) => {
    if (!ctx.path.startsWith('/interaction/') || ctx.method !== 'GET') {
      await next();
      return;
    }
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const { prompt, params, session } = details;
    records.interactions.push({ prompt: prompt.name, client_id: params.client_id, params });
    let result;
    if (prompt.name === 'login') {
      result = { login: { accountId: config.account_id || 'test-user' } };
    } else {
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      const d = prompt.details;
      if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
      if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes || {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      result = { consent: { grantId: await grant.save() } };
    }
    await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: true });
    ctx.respond = false;
  };
}

function requireParams(ctx, names) {
  for (const name of names) {
    if (!ctx.oidc.params[name]) {
      throw new errors.InvalidRequest(`missing required parameter '${name}'`);
    }
  }
}

async function issueAccessToken(provider, ctx, extra) {
  const token = new provider.ClientCredentials({
    client: ctx.oidc.client,
    scope: ctx.oidc.params.scope || undefined,
  });
  const value = await token.save();
  ctx.body = {
    access_token: value,
    token_type: 'Bearer',
    expires_in: token.expiration,
    ...(ctx.oidc.params.scope ? { scope: ctx.oidc.params.scope } : {}),
    ...extra,
  };
}

function recordGrant(ctx) {
  records.grants.push({
    grant_type: ctx.oidc.params.grant_type,
    client_id: ctx.oidc.client.clientId,
    auth_method: ctx.oidc.client.clientAuthMethod,
    // The full form, client authentication included, as it arrived.
    params: { ...ctx.oidc.body },
  });
}

// RFC 7523 section 2.1: the assertion is the grant; it must be a JWT with
// iss, sub, aud and exp (section 3). Its signature is the issuer's
// business, which this test server does not know, so it records and
// checks the claims only.
function jwtBearer(provider) {
  return async (ctx) => {
    recordGrant(ctx);
    requireParams(ctx, ['assertion']);
    const decoded = decodeJWT(ctx.oidc.params.assertion);
    if (decoded.malformed) throw new errors.InvalidGrant('assertion is not a JWT');
    for (const claim of ['iss', 'sub', 'aud', 'exp']) {
      if (decoded.claims[claim] === undefined) throw new errors.InvalidGrant(`assertion has no ${claim} claim`);
    }
    if (decoded.claims.exp * 1000 < Date.now()) throw new errors.InvalidGrant('assertion expired');
    await issueAccessToken(provider, ctx, {});
  };
}

// RFC 6749 section 4.3.2: username and password are required. The users
// are config.users ({name: password}); without any, every user is let in.
function passwordGrant(provider) {
  return async (ctx) => {
    recordGrant(ctx);
    requireParams(ctx, ['username', 'password']);
    const users = config.users || {};
    const { username, password } = ctx.oidc.params;
    if (Object.keys(users).length > 0 && users[username] !== password) {
      throw new errors.InvalidGrant('wrong username or password');
    }
    await issueAccessToken(provider, ctx, {});
  };
}

// RFC 8693 section 2.1: subject_token and subject_token_type are required;
// actor_token_type is required when actor_token is present and must not
// be sent without it. The answer carries issued_token_type (section 2.2.1).
function tokenExchange(provider) {
  return async (ctx) => {
    recordGrant(ctx);
    requireParams(ctx, ['subject_token', 'subject_token_type']);
    const { actor_token: actor, actor_token_type: actorType } = ctx.oidc.params;
    if (actor && !actorType) throw new errors.InvalidRequest("missing required parameter 'actor_token_type'");
    if (actorType && !actor) throw new errors.InvalidRequest("'actor_token_type' without 'actor_token'");
    const requested = ctx.oidc.params.requested_token_type;
    if (requested && requested !== ACCESS_TOKEN_TYPE) {
      throw new errors.InvalidRequest(`this server issues only ${ACCESS_TOKEN_TYPE}`);
    }
    await issueAccessToken(provider, ctx, { issued_token_type: ACCESS_TOKEN_TYPE });
  };
}

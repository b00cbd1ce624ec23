// A foreign authorization server for the interop test: panva's
// oidc-provider, configured for the client credentials grant with
// DPoP-bound (RFC 9449) and certificate-bound (RFC 8705) JWT access tokens
// (RFC 9068) for one resource.
//
// Usage: node issuer.mjs CONFIG.json
//
// CONFIG names PEM files (serverCert, serverKey, clientCA), the private
// ES256 JWK that signs access tokens (signingKey; the test holds it to
// forge edge-case tokens), the resource identifier (resource) and the
// clients (dpopClient {id, secret},
// mtlsClient {id, subjectDN}, introspector {id, secret}), and optionally
// trustAnyCA, a misconfiguration the test uses to show an accepted attack. The server
// listens on 127.0.0.1 at a random port over TLS, asks for (but does not
// require) a client certificate, and prints one line "READY <issuer>" on
// stdout once it accepts connections. It exits when stdin closes, so it
// never outlives the process that started it.
import { readFileSync } from 'node:fs';
import * as crypto from 'node:crypto';
import * as https from 'node:https';

import Provider, { errors } from 'oidc-provider';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));

function peerCertificate(ctx) {
  const socket = ctx.req.socket;
  if (typeof socket.getPeerX509Certificate !== 'function') return undefined;
  return socket.getPeerX509Certificate();
}

const server = https.createServer({
  cert: readFileSync(cfg.serverCert),
  key: readFileSync(cfg.serverKey),
  ca: readFileSync(cfg.clientCA),
  requestCert: true,
  rejectUnauthorized: false,
});

server.listen(0, '127.0.0.1', () => {
  const issuer = `https://127.0.0.1:${server.address().port}`;
  const resourceServer = {
    scope: 'read',
    audience: cfg.resource,
    accessTokenFormat: 'jwt',
    accessTokenTTL: 600,
    jwt: { sign: { alg: 'ES256' } },
  };
  const provider = new Provider(issuer, {
    jwks: { keys: [cfg.signingKey] },
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    clientAuthMethods: ['client_secret_basic', 'tls_client_auth'],
    scopes: ['read'],
    clients: [
      {
        client_id: cfg.dpopClient.id,
        client_secret: cfg.dpopClient.secret,
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: 'read',
      },
      {
        client_id: cfg.mtlsClient.id,
        token_endpoint_auth_method: 'tls_client_auth',
        tls_client_auth_subject_dn: cfg.mtlsClient.subjectDN,
        tls_client_certificate_bound_access_tokens: true,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: 'read',
      },
      {
        client_id: cfg.introspector.id,
        client_secret: cfg.introspector.secret,
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: [],
        response_types: [],
        redirect_uris: [],
      },
    ],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      dPoP: { enabled: true },
      mTLS: {
        enabled: true,
        certificateBoundAccessTokens: true,
        tlsClientAuth: true,
        getCertificate: peerCertificate,
        // trustAnyCA is a deliberate misconfiguration for the test: a
        // certificate from any CA authenticates a client whose registered
        // subject DN it carries (RFC 8705 §2.1 requires a trusted chain).
        certificateAuthorized: (ctx) => cfg.trustAnyCA === true || ctx.req.socket.authorized === true,
        certificateSubjectMatches: (ctx, property, expected) => property === 'tls_client_auth_subject_dn'
          && peerCertificate(ctx)?.subject === expected,
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => cfg.resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resourceIndicator) => {
          if (resourceIndicator !== cfg.resource) throw new errors.InvalidTarget();
          return resourceServer;
        },
      },
    },
  });
  server.on('request', provider.callback());
  process.stdout.write(`READY ${issuer}\n`);
});

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));

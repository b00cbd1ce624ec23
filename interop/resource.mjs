// A foreign resource server for the interop test: Auth0's
// express-oauth2-jwt-bearer (an Express middleware that verifies JWT access
// tokens, DPoP-bound per RFC 9449 and certificate-bound per RFC 8705)
// protecting GET /resource with scope "read".
//
// Usage: node resource.mjs CONFIG.json
//
// CONFIG names PEM files (serverCert, serverKey; ca, the roots that verify
// the issuer's server certificate), the issuer URL (issuer; its metadata
// and keys are discovered) and the audience. The server listens on
// 127.0.0.1 at a random port over TLS, asks for (but does not require) a
// client certificate, and prints one line "READY <base URL>" on stdout
// once it accepts connections. It exits when stdin closes.
import { readFileSync } from 'node:fs';
import * as https from 'node:https';

import express from 'express';
import { auth, requiredScopes } from 'express-oauth2-jwt-bearer';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));

const app = express();
app.get(
  '/resource',
  auth({
    issuerBaseURL: cfg.issuer,
    audience: cfg.audience,
    // The RFC 9068 profile: typ at+jwt, and iat, sub, client_id and jti
    // required.
    strict: true,
    agent: new https.Agent({ ca: readFileSync(cfg.ca) }),
    dpop: { enabled: true, required: false },
    mtls: { enabled: true, required: false },
    getCertificate: (req) => {
      const cert = req.socket.getPeerCertificate?.();
      return cert?.raw;
    },
  }),
  requiredScopes('read'),
  (req, res) => res.json({ ok: true }),
);
// Errors carry their WWW-Authenticate in err.headers; the body never
// repeats the request.
app.use((err, req, res, next) => {
  if (res.headersSent) return next(err);
  res.set(err.headers || {});
  res.status(err.status || 500).json({ error: err.code || 'server_error' });
});

const server = https.createServer({
  cert: readFileSync(cfg.serverCert),
  key: readFileSync(cfg.serverKey),
  requestCert: true,
  rejectUnauthorized: false,
}, app);

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`READY https://127.0.0.1:${server.address().port}\n`);
});

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));

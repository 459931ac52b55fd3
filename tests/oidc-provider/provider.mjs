// A real OpenID Provider for Tessera's integration tests: node `oidc-provider`
// (OpenID Certified), started by the test harness (tests/it/common/oidc.rs) on a
// free port of 127.0.0.1 and stopped with the test.
//
// Configured from the environment:
//   CLIENTS   JSON [{client_id, client_secret, redirect_uris}] (client_secret_basic, PKCE required)
//   ACCOUNTS  JSON {"<sub>": {preferred_username, email, groups, ...claims}}
//
// The only code of our own is the interaction (the provider's login page): a
// form naming the account to sign in as, with a "Deny" button that answers
// `access_denied`; consent is granted for the scopes asked. Codes, tokens, ID
// tokens, discovery and keys are the provider's own. `PUT /test/accounts/<sub>`
// replaces an account's claims (a rename or a group change at the provider).
//
// The first line on stdout is `listening on <issuer>`.

import crypto from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const clients = JSON.parse(process.env.CLIENTS || '[]');
const accounts = new Map(Object.entries(JSON.parse(process.env.ACCOUNTS || '{}')));

const signingKey = {
  ...crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
  kid: crypto.randomUUID(),
  use: 'sig',
  alg: 'RS256',
};

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function readBody(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => { data += chunk; });
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}

function loginPage(res, uid, hint, error) {
  res.statusCode = 200;
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.end(`<!doctype html><html><head><title>Test provider: sign in</title></head><body>
<h1>Test identity provider</h1>
${error ? `<p id="error">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label for="account">Account</label>
<input id="account" name="account" value="${escape(hint || '')}" autofocus>
<button id="sign-in" type="submit">Sign in</button>
<button id="deny" type="submit" name="deny" value="1">Deny</button>
</form></body></html>`);
}

const server = http.createServer();
server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: clients.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      redirect_uris: c.redirect_uris,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code'],
      response_types: ['code'],
    })),
    jwks: { keys: [signingKey] },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    scopes: ['openid', 'profile', 'email', 'groups'],
    claims: {
      openid: ['sub'],
      profile: ['preferred_username', 'name', 'upn'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    // Claims of the granted scopes go into the ID token (as Keycloak and
    // Entra ID put them), not only into userinfo.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: async (ctx, sub) => {
      const claims = accounts.get(sub);
      if (!claims) return undefined;
      return { accountId: sub, claims: async () => ({ ...accounts.get(sub), sub }) };
    },
  });
  const callback = provider.callback();

  server.on('request', async (req, res) => {
    const url = new URL(req.url, issuer);
    const parts = url.pathname.split('/').filter(Boolean);
    try {
      if (req.method === 'PUT' && parts[0] === 'test' && parts[1] === 'accounts' && parts[2]) {
        accounts.set(decodeURIComponent(parts[2]), JSON.parse(await readBody(req)));
        res.statusCode = 204;
        res.end();
        return;
      }
      if (parts[0] === 'interaction' && parts[1]) {
        const details = await provider.interactionDetails(req, res);
        if (req.method === 'GET' && details.prompt.name === 'login') {
          loginPage(res, details.uid, details.params.login_hint);
          return;
        }
        if (req.method === 'GET' && details.prompt.name === 'consent') {
          const grant = new provider.Grant({
            accountId: details.session.accountId,
            clientId: details.params.client_id,
          });
          const missing = details.prompt.details;
          if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
          if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
          const grantId = await grant.save();
          await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
          return;
        }
        if (req.method === 'POST' && parts[2] === 'login') {
          const form = new URLSearchParams(await readBody(req));
          if (form.get('deny')) {
            await provider.interactionFinished(req, res, {
              error: 'access_denied',
              error_description: 'the person declined to sign in',
            }, { mergeWithLastSubmission: false });
            return;
          }
          const account = form.get('account') || '';
          if (!accounts.has(account)) {
            loginPage(res, details.uid, account, `no such account: ${account}`);
            return;
          }
          await provider.interactionFinished(req, res, { login: { accountId: account } }, { mergeWithLastSubmission: false });
          return;
        }
      }
      callback(req, res);
    } catch (err) {
      res.statusCode = 400;
      res.setHeader('content-type', 'text/plain');
      res.end(`test provider: ${err.message}`);
    }
  });
  console.log(`listening on ${issuer}`);
});

process.on('SIGTERM', () => process.exit(0));

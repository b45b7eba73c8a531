// Calls to the server. The session cookie is HttpOnly: the page only ever holds the
// session's CSRF token, which every call echoes in the X-Acql-Csrf header.

let csrf = null;

/** Remembers the CSRF token of the current session (null after logout). */
export function setCsrf(token) {
  csrf = token || null;
}

/** The CSRF token, for the download form. */
export function csrfToken() {
  return csrf || '';
}

/** An error reply of the server, in the vendor's envelope. */
export class ApiError extends Error {
  constructor(reply) {
    super(reply.errorDetails || reply.errorMessage || 'request failed');
    this.reply = reply;
    this.code = reply.errorCode;
  }
}

async function envelope(response) {
  let reply;
  try {
    reply = await response.json();
  } catch (_) {
    reply = { errorCode: 500001, errorMessage: 'Bad reply', errorDetails: `HTTP ${response.status}` };
  }
  if (reply.errorCode && reply.errorCode !== 0) throw new ApiError(reply);
  return reply;
}

function headers(extra) {
  const h = { ...extra };
  if (csrf) h['X-Acql-Csrf'] = csrf;
  return h;
}

/** GET a console endpoint. */
export async function get(path) {
  return envelope(await fetch(path, { headers: headers({}), credentials: 'same-origin' }));
}

/** POST a JSON body to a console endpoint. */
export async function post(path, body) {
  return envelope(await fetch(path, {
    method: 'POST',
    credentials: 'same-origin',
    headers: headers({ 'Content-Type': 'application/json' }),
    body: JSON.stringify(body || {}),
  }));
}

/** accounts.search with form parameters, exactly as an SDK sends it. */
export async function search(params) {
  const form = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null) form.set(k, String(v));
  }
  return envelope(await fetch('/accounts.search', {
    method: 'POST',
    credentials: 'same-origin',
    headers: headers({ 'Content-Type': 'application/x-www-form-urlencoded' }),
    body: form,
  }));
}

/** The session: {mode, loggedIn, user, csrf, writes}. A refused console throws. */
export async function session() {
  const response = await fetch('/console/api/session', { credentials: 'same-origin' });
  const reply = await response.json();
  if (reply.mode === 'refused') return reply;
  if (reply.errorCode) throw new ApiError(reply);
  setCsrf(reply.csrf);
  return reply;
}

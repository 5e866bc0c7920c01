// The console's calls to herald's HTTP API, on the same origin. With a
// session (a server that wants tokens) the browser sends the HttpOnly
// session cookie; calls that change something carry the session's CSRF
// token in Herald-Csrf. The token itself is never in the page.

let current = null;

function toLogin() {
  location.assign('/ui/login?next=' + encodeURIComponent(location.pathname + location.search));
}

// session returns who the console acts as: {auth, identity, admin,
// publish, subscribe, csrf}. Without a session it goes to the login page.
export async function session() {
  if (current) return current;
  const r = await fetch('/ui/session', {credentials: 'same-origin', cache: 'no-store'});
  if (r.status === 401) {
    toLogin();
    throw new Error('not logged in');
  }
  if (!r.ok) throw new Error('GET /ui/session: ' + r.status);
  current = await r.json();
  return current;
}

// ApiError carries the API's error code and status.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// api calls the API and returns its JSON answer (null for none); an error
// answer throws an ApiError.
export async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && current && current.csrf) headers['Herald-Csrf'] = current.csrf;
  const r = await fetch(path, {
    method, headers, credentials: 'same-origin', cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 401 && current && current.auth) {
    toLogin();
    throw new ApiError(401, 'unauthorized', 'the session has ended');
  }
  const text = await r.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!r.ok) {
    const e = data && data.error;
    throw new ApiError(r.status, e ? e.code : 'http_' + r.status, e ? e.message : `${method} ${path}: ${r.status}`);
  }
  return data;
}

// logout ends the session and goes to the login page.
export async function logout() {
  await fetch('/ui/logout', {method: 'POST', credentials: 'same-origin',
    headers: current && current.csrf ? {'Herald-Csrf': current.csrf} : {}});
  current = null;
  location.assign('/ui/login');
}

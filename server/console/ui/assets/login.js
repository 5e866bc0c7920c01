// The login page: it only carries the query's next page and failure into
// the form. The form posts the token to the server, which answers with a
// session cookie this script never sees.
const q = new URLSearchParams(location.search);
const next = q.get('next');
if (next && next.startsWith('/ui/')) document.getElementById('next').value = next;
if (q.has('failed')) document.getElementById('failed').hidden = false;
document.getElementById('token').focus();

// Django's CSRF token for a POST made from script: the cookie, or the hidden
// field a form on the page carries (when the cookie is HttpOnly).
export function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  if (m) return decodeURIComponent(m[1]);
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

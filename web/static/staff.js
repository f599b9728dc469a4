/* Shared by the staff pages (/dashboard, /admin): DOM helpers, the authenticated JSON API,
 * and the sign-in session (token in sessionStorage, sign-in form, sign-out, expiry). */
(function () {
  "use strict";

  const TOKEN_KEY = "sb-staff-token";
  const $ = (id) => document.getElementById(id);

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const c of children) if (c != null) node.append(c);
    return node;
  }

  function button(label, cls, onClick) {
    const b = el("button", { type: "button", className: cls || "", textContent: label });
    b.addEventListener("click", onClick);
    return b;
  }

  /* One signed-in staff member. `onSignedIn(staff | null)` runs after a sign-in (with the
   * staff record) or on page load with a kept token (null); `onSignedOut()` after the token
   * is dropped: by the Sign out button, or when the server answers 401. */
  function session({ showError, onSignedIn, onSignedOut, beforeSignIn }) {
    let token = sessionStorage.getItem(TOKEN_KEY);

    async function api(method, url, body) {
      const headers = {};
      if (token) headers.Authorization = "Bearer " + token;
      if (body) headers["Content-Type"] = "application/json";
      const resp = await fetch(url, { method, headers, body: body ? JSON.stringify(body) : undefined });
      const data = resp.status === 204 ? null : await resp.json().catch(() => null);
      if (resp.status === 401 && url !== "/api/staff/login") signOut();
      if (!resp.ok) throw new Error((data && data.error && data.error.message) || resp.statusText);
      return data;
    }

    function signOut() {
      token = null;
      sessionStorage.removeItem(TOKEN_KEY);
      $("board").hidden = true;
      $("me").hidden = true;
      $("login").hidden = false;
      if (onSignedOut) onSignedOut();
    }

    $("login-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (beforeSignIn) beforeSignIn();
      try {
        const res = await api("POST", "/api/staff/login", { username: $("username").value, password: $("password").value });
        token = res.token;
        sessionStorage.setItem(TOKEN_KEY, token);
        showError("");
        await onSignedIn(res.staff);
      } catch (e) {
        showError(e.message);
      }
    });
    $("logout").addEventListener("click", signOut);

    return {
      api,
      signOut,
      signedIn: () => token !== null,
      /* The Authorization header value, for requests api() cannot make (event streams). */
      authorization: () => (token ? "Bearer " + token : null),
      /* Call once the page is wired: resumes a kept sign-in. */
      resume() {
        if (token) onSignedIn(null);
      },
    };
  }

  window.SB_Staff = { el, button, session };
})();

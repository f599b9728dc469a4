/* Shared by the staff pages (/dashboard, /admin): DOM helpers, the page language (five,
 * from i18n.js), the error box (refusals worded by code, never the server's English), the
 * authenticated JSON API, and the sign-in session (token in sessionStorage, sign-in form,
 * sign-out, expiry). */
(function () {
  "use strict";

  const I18N = window.SB_I18N;
  const TOKEN_KEY = "sb-staff-token";
  const $ = (id) => document.getElementById(id);

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const c of children) if (c != null) node.append(c);
    return node;
  }

  function button(label, cls, onClick, ariaLabel) {
    const b = el("button", { type: "button", className: cls || "", textContent: label });
    if (ariaLabel) b.setAttribute("aria-label", ariaLabel);
    b.addEventListener("click", onClick);
    return b;
  }

  /* The page's language: a switcher in #ui-lang, [data-i18n] filled; onChange(lang) re-renders. */
  function language(onChange) {
    let lang = I18N.pageLanguage("ko");
    const apply = () => {
      I18N.applyStrings(lang);
      document.title = `Seoulbridge · ${I18N.t(lang, document.body.dataset.titleKey || "dash_title")}`;
    };
    I18N.fillLanguageSelect($("ui-lang"), lang, (next) => {
      lang = next;
      apply();
      onChange(lang);
    });
    apply();
    return { get: () => lang, t: (key, vars) => I18N.t(lang, key, vars) };
  }

  /* The #error box: show(err) with an ApiError (or {code}), show(null) to hide; re-worded
   * in the new language by rerender(). */
  function errorBox(lang, onShow) {
    let last = null;
    function show(err) {
      last = err || null;
      const box = $("error");
      const text = last ? I18N.errorText(lang.get(), last, { staff: true }) : "";
      box.dataset.code = last ? last.code || "" : "";
      box.textContent = text;
      box.hidden = !text;
      if (text && onShow) onShow();
    }
    return { show, rerender: () => show(last) };
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
      try {
        return await I18N.fetchJson(url, { method, headers, body: body ? JSON.stringify(body) : undefined });
      } catch (e) {
        if (e.status === 401 && url !== "/api/staff/login") signOut();
        throw e;
      }
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
        showError(null);
        await onSignedIn(res.staff);
      } catch (e) {
        showError(e);
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

  window.SB_Staff = { el, button, language, errorBox, session };
})();

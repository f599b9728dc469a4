/* Seoulbridge call page: the identity check (signaling/PROTOCOL.md, "Identity check").
 *
 * - A counselor/admin gets an "Identity check" control while a resident is in the
 *   call. It opens a dialog: whom (when several residents), how (mobile ID shown on
 *   camera, mobile ID for residents abroad, financial certificate, passport shown
 *   on camera, other) and, optionally, the last 2-4 characters of the document's
 *   number as a cross-check — never the whole number. Confirm sends identity_verify.
 * - Everyone sees a banner once a resident is verified (identity_verified): the
 *   resident reads that they were verified, by whom and how.
 *
 * Plain script: defines window.SB_Identity and attaches itself to the page state
 * (window.seoulbridge) when the page has loaded; call.js hands it every
 * identity_* message with handle(msg). Its elements carry data-i18n attributes,
 * so a language change rewords them; the banner is rewritten on a change too.
 * State for tests: S.identity = {participant_id: message}.
 */
(function () {
  "use strict";

  const METHODS = [
    "mobile_id_camera",
    "mobile_id_abroad",
    "financial_certificate",
    "passport_camera",
    "other",
  ];
  const CHECK = /^[A-Za-z0-9]{2,4}$/;

  let S = null;
  const els = {};

  function t(key, vars) {
    return window.SB_I18N.t(S ? S.lang : "en", key, vars);
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "i18n") node.dataset.i18n = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }

  function canModerate() {
    return !!(S && S.you && (S.you.role === "counselor" || S.you.role === "admin"));
  }

  function residents() {
    return Object.values(S.participants || {}).filter((p) => p.role === "resident");
  }

  function nameOf(id) {
    if (S.you && S.you.id === id) return S.you.name;
    const p = (S.participants || {})[id];
    return p ? p.name : t("rec_someone");
  }

  function build() {
    const controls = document.querySelector(".controls");
    els.button = el(
      "button",
      { id: "btn-identity", class: "ctl ctl-identity", type: "button", hidden: "" },
      el("span", { class: "id-icon", "aria-hidden": "true", text: "✓" }),
      el("span", { class: "ctl-label", i18n: "id_button", text: t("id_button") }),
    );
    const leave = document.getElementById("btn-leave");
    if (controls) controls.insertBefore(els.button, leave && leave.parentNode === controls ? leave : null);

    els.banner = el("div", { id: "id-banner", class: "id-banner", role: "status", "aria-live": "polite", hidden: "" });
    const stage = document.querySelector("#screen-call .stage-col") || document.body;
    stage.prepend(els.banner);

    els.who = el("select", { id: "id-who" });
    els.whoRow = el("label", { class: "id-row" }, el("span", { i18n: "id_who", text: t("id_who") }), els.who);
    els.methods = el("fieldset", { class: "id-methods" }, el("legend", { i18n: "id_method", text: t("id_method") }));
    for (const m of METHODS) {
      const input = el("input", { type: "radio", name: "id-method", value: m, id: `id-m-${m}` });
      els.methods.append(el("label", { class: "id-method", for: `id-m-${m}` }, input, el("span", { i18n: `id_m_${m}`, text: t(`id_m_${m}`) })));
    }
    els.check = el("input", {
      id: "id-check",
      type: "text",
      inputmode: "text",
      maxlength: "4",
      autocomplete: "off",
      "aria-describedby": "id-check-hint",
    });
    els.checkRow = el(
      "label",
      { class: "id-row" },
      el("span", { i18n: "id_check", text: t("id_check") }),
      els.check,
    );
    els.hint = el("p", { id: "id-check-hint", class: "muted", i18n: "id_check_hint", text: t("id_check_hint") });
    els.problem = el("p", { id: "id-problem", class: "id-problem", role: "alert", hidden: "" });
    els.confirm = el("button", { id: "id-confirm", class: "btn btn-primary btn-big", type: "button", i18n: "id_confirm", text: t("id_confirm") });
    els.cancel = el("button", { id: "id-cancel", class: "btn btn-secondary btn-big", type: "button", i18n: "cancel", text: t("cancel") });
    els.dialog = el(
      "dialog",
      { id: "id-dialog", class: "id-dialog", "aria-labelledby": "id-dialog-title" },
      el("h2", { id: "id-dialog-title", tabindex: "-1", i18n: "id_title", text: t("id_title") }),
      els.whoRow,
      els.methods,
      els.checkRow,
      els.hint,
      els.problem,
      el("div", { class: "id-buttons" }, els.confirm, els.cancel),
    );
    document.body.append(els.dialog);

    els.button.addEventListener("click", open);
    els.cancel.addEventListener("click", () => els.dialog.close());
    els.confirm.addEventListener("click", submit);
    els.methods.addEventListener("change", () => {
      els.problem.hidden = true;
    });
    els.check.addEventListener("input", () => {
      els.check.value = els.check.value.replace(/[^A-Za-z0-9]/g, "").slice(0, 4);
    });
    // A language change: the banner's sentence has names in it, so it is made again.
    new MutationObserver(render).observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });
  }

  function open() {
    const people = residents();
    els.who.replaceChildren(...people.map((p) => el("option", { value: p.id, text: p.name })));
    els.whoRow.hidden = people.length < 2;
    for (const input of els.methods.querySelectorAll("input")) input.checked = false;
    els.check.value = "";
    els.problem.hidden = true;
    els.dialog.showModal();
    document.getElementById("id-dialog-title").focus();
  }

  function fail(key) {
    els.problem.textContent = t(key);
    els.problem.dataset.i18n = key;
    els.problem.hidden = false;
  }

  function submit() {
    const chosen = els.methods.querySelector("input:checked");
    if (!chosen) return fail("id_need_method");
    const check = els.check.value.trim();
    if (check && !CHECK.test(check)) return fail("id_bad_check");
    const msg = { type: "identity_verify", participant_id: els.who.value, method: chosen.value };
    if (check) msg.check = check;
    if (S.send(msg)) els.dialog.close();
  }

  function when(at) {
    return new Date(at * 1000).toLocaleTimeString(S.lang, { hour: "2-digit", minute: "2-digit" });
  }

  function render() {
    if (!S) return;
    els.button.hidden = !(canModerate() && S.screen === "call" && residents().length > 0);
    const checks = Object.values(S.identity);
    if (!checks.length) {
      els.banner.hidden = true;
      return;
    }
    const lines = checks.map((c) => {
      const vars = { method: t(`id_m_${c.method}`), by: c.verified_by, time: when(c.at), name: nameOf(c.participant_id) };
      let text = S.you && S.you.id === c.participant_id ? t("id_verified_you", vars) : t("id_verified_other", vars);
      if (c.check && canModerate()) text += " · " + t("id_noted", { check: c.check });
      return el("p", { class: "id-line", "data-participant": c.participant_id, text });
    });
    els.banner.replaceChildren(...lines);
    els.banner.hidden = false;
  }

  function handle(msg) {
    if (!S || msg.type !== "identity_verified") return;
    S.identity[msg.participant_id] = msg;
    render();
  }

  function attach() {
    S = window.seoulbridge;
    if (!S) return;
    S.identity = {};
    build();
    render();
    // The control follows who is in the call; the tiles re-render on every change.
    const grid = document.getElementById("grid") || document.body;
    new MutationObserver(render).observe(grid, { childList: true });
    const screen = document.getElementById("screen-call");
    if (screen) new MutationObserver(render).observe(screen, { attributes: true, attributeFilter: ["hidden"] });
  }

  window.SB_Identity = { handle, render, METHODS };
  // Deferred, before call.js: the page state exists once every deferred script has run.
  if (document.readyState !== "complete") document.addEventListener("DOMContentLoaded", attach);
  else attach();
})();

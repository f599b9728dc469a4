/* Seoulbridge administration: the privacy section (its own file, so the page's other
 * parts change independently).
 *
 * - Audit log: the newest entries (who, when, what, from where — never personal data),
 *   and a check that the chain of MACs is intact (GET /api/audit, /api/audit/verify).
 * - Retention: count what is past its retention period, or delete it now
 *   (POST /api/privacy/purge).
 * - Requests from a person: download everything held about one consultation, or delete
 *   it early (GET/DELETE /api/privacy/consultations/{room}).
 *
 * Words come from i18n.js (PRIVACY_STRINGS) in the browser's language; refusals are
 * shown by their code (pv_err_<code>). The staff sign-in is the page's own (the token
 * staff.js keeps in sessionStorage).
 */
(function () {
  "use strict";

  const TOKEN_KEY = "sb-staff-token";
  const I18N = window.SB_I18N;
  const lang = I18N.match(navigator.language) || "ko";
  const t = (key, vars) => I18N.t(lang, key, vars);
  const $ = (id) => document.getElementById(id);

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const c of children) if (c != null) node.append(c);
    return node;
  }

  class ApiError extends Error {
    constructor(code, message) {
      super(message);
      this.code = code;
    }
  }

  async function api(method, url, body) {
    const headers = { Authorization: "Bearer " + (sessionStorage.getItem(TOKEN_KEY) || "") };
    if (body) headers["Content-Type"] = "application/json";
    const resp = await fetch(url, { method, headers, body: body ? JSON.stringify(body) : undefined });
    const data = await resp.json().catch(() => null);
    if (!resp.ok) {
      const err = (data && data.error) || {};
      throw new ApiError(err.code || "other", err.message || resp.statusText);
    }
    return data;
  }

  function problem(node, e) {
    const key = `pv_err_${e.code}`;
    node.textContent = I18N.STRINGS.en[key] !== undefined ? t(key) : `${t("pv_err_other")} (${e.message})`;
    node.className = "error";
    node.hidden = false;
  }

  function say(node, text) {
    node.textContent = text;
    node.className = "saved";
    node.hidden = false;
  }

  function build() {
    const board = $("board");
    if (!board) return;
    const auditOut = el("p", { id: "pv-audit-status", hidden: true, role: "status" });
    const rows = el("tbody", { id: "pv-audit-rows" });
    const table = el(
      "table",
      { id: "pv-audit-table", hidden: true },
      el(
        "thead",
        {},
        el("tr", {}, ...["at", "action", "actor", "source", "target", "detail"].map((c) => el("th", { textContent: t(`pv_col_${c}`) }))),
      ),
      rows,
    );
    const showAudit = el("button", { type: "button", id: "pv-audit-load", textContent: t("pv_audit_load") });
    const verify = el("button", { type: "button", id: "pv-audit-verify", textContent: t("pv_audit_verify") });

    const purgeOut = el("p", { id: "pv-purge-status", hidden: true, role: "status" });
    const dry = el("button", { type: "button", id: "pv-purge-dry", textContent: t("pv_purge_dry") });
    const run = el("button", { type: "button", id: "pv-purge-run", className: "danger", textContent: t("pv_purge_run") });

    const room = el("input", { id: "pv-room", required: true, autocomplete: "off", spellcheck: false });
    const subjectOut = el("p", { id: "pv-subject-status", hidden: true, role: "status" });
    const exportBtn = el("button", { type: "button", id: "pv-subject-export", textContent: t("pv_subject_export") });
    const deleteBtn = el("button", { type: "button", id: "pv-subject-delete", className: "danger", textContent: t("pv_subject_delete") });

    const section = el(
      "section",
      { className: "card", id: "privacy" },
      el("h2", { textContent: t("pv_title") }),
      el("h3", { textContent: t("pv_audit") }),
      el("div", { className: "buttons" }, showAudit, verify),
      auditOut,
      el("div", { className: "table-scroll" }, table),
      el("h3", { textContent: t("pv_purge") }),
      el("div", { className: "buttons" }, dry, run),
      purgeOut,
      el("h3", { textContent: t("pv_subject") }),
      el("label", {}, el("span", { textContent: t("pv_subject_room") }), room),
      el("div", { className: "buttons" }, exportBtn, deleteBtn),
      subjectOut,
    );
    board.append(section);

    showAudit.addEventListener("click", async () => {
      try {
        const page = await api("GET", "/api/audit?limit=200");
        rows.replaceChildren(
          ...page.entries.map((e) =>
            el(
              "tr",
              {},
              el("td", { textContent: new Date(e.at).toLocaleString(lang) }),
              el("td", { textContent: e.action }),
              el("td", { textContent: e.role ? `${e.actor} (${e.role})` : e.actor }),
              el("td", { textContent: e.source }),
              el("td", { textContent: e.target }),
              el("td", { textContent: Object.entries(e.detail).map(([k, v]) => `${k}=${v}`).join(" ") }),
            ),
          ),
        );
        table.hidden = page.entries.length === 0;
        if (!page.entries.length) say(auditOut, t("pv_audit_empty"));
        else auditOut.hidden = true;
      } catch (e) {
        problem(auditOut, e);
      }
    });
    verify.addEventListener("click", async () => {
      try {
        const check = await api("GET", "/api/audit/verify");
        if (check.ok) say(auditOut, t("pv_audit_ok", { count: check.entries }));
        else problem(auditOut, { code: "audit_bad", message: t("pv_audit_bad", { problem: check.problem }) });
      } catch (e) {
        problem(auditOut, e);
      }
    });

    async function purge(dryRun) {
      try {
        const r = await api("POST", "/api/privacy/purge", { dry_run: dryRun });
        const counts = {
          rooms: r.recordings.rooms,
          transcripts: r.transcripts.files,
          chats: r.chat.keys,
          bookings: r.contact.bookings,
          audit: r.audit.entries,
        };
        say(purgeOut, t(dryRun ? "pv_purge_would" : "pv_purge_done") + t("pv_purge_result", counts));
      } catch (e) {
        problem(purgeOut, e);
      }
    }
    dry.addEventListener("click", () => purge(true));
    run.addEventListener("click", () => {
      if (window.confirm(t("pv_purge_confirm"))) purge(false);
    });

    exportBtn.addEventListener("click", async () => {
      const id = room.value.trim();
      if (!id) return room.reportValidity();
      try {
        const data = await api("GET", `/api/privacy/consultations/${encodeURIComponent(id)}`);
        const blob = new Blob([JSON.stringify(data, null, 2)], { type: "application/json" });
        const link = el("a", { href: URL.createObjectURL(blob), download: `consultation-${id}.json` });
        document.body.append(link);
        link.click();
        link.remove();
        subjectOut.hidden = true;
      } catch (e) {
        problem(subjectOut, e);
      }
    });
    deleteBtn.addEventListener("click", async () => {
      const id = room.value.trim();
      if (!id) return room.reportValidity();
      if (!window.confirm(t("pv_subject_confirm"))) return;
      try {
        const r = await api("DELETE", `/api/privacy/consultations/${encodeURIComponent(id)}`);
        say(subjectOut, t("pv_subject_deleted", { files: r.recording_files, lines: r.transcript_lines, chat: r.chat_lines }));
      } catch (e) {
        problem(subjectOut, e);
      }
    });
  }

  if (document.readyState !== "complete") document.addEventListener("DOMContentLoaded", build);
  else build();
})();

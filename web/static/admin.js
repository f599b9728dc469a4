/* Seoulbridge administration: staff (roles, languages, topics, weekly hours, leave),
 * topics (names in five languages, slot length), center hours and Korean holidays.
 * Words in five languages from i18n.js; refusals worded by code and field. */
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const { el, button } = window.SB_Staff;
  const LANGS = window.SB_LANGUAGES.codes; // from /languages.js (kernel/languages.py)
  const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
  let topics = [];
  let staff = [];
  let editing = null;
  let center = null;
  let coverage = null;

  const lang = window.SB_Staff.language(() => {
    errors.rerender();
    renderTopics();
    renderStaff();
    renderCenter();
    renderCoverage();
    if (!$("staff-form").hidden) renderBoxes(editing ? editing.topics : checked("topics"), checked("languages"));
  });
  const t = lang.t;
  const errors = window.SB_Staff.errorBox(lang, () => {
    $("saved").hidden = true;
    $("error").scrollIntoView({ behavior: "smooth", block: "center" });
  });
  const showError = errors.show;

  /** A mistake found on this page, worded from the catalogue. */
  class FormError extends Error {
    constructor(key, vars) {
      super(key);
      this.key = key;
      this.vars = vars;
    }
  }

  function showFormError(e) {
    if (!(e instanceof FormError)) return showError(e);
    errors.show(null);
    $("error").textContent = t(e.key, e.vars);
    $("error").hidden = false;
    $("saved").hidden = true;
  }

  function checked(name) {
    return [...$("staff-form").querySelectorAll(`input[name=${name}]:checked`)].map((i) => i.value);
  }

  function saved(message) {
    $("saved").textContent = message;
    $("saved").hidden = false;
    setTimeout(() => { $("saved").hidden = true; }, 3000);
  }

  function hoursText(weekly) {
    return DAYS.filter((d) => weekly[d] && weekly[d].length)
      .map((d) => d + " " + weekly[d].map((r) => r.start.slice(0, 5) + "-" + r.end.slice(0, 5)).join(", "))
      .join("\n");
  }

  function parseHours(text) {
    const weekly = {};
    for (const [n, raw] of text.split("\n").entries()) {
      const line = raw.trim();
      if (!line) continue;
      const m = line.match(/^(mon|tue|wed|thu|fri|sat|sun)\s+(.+)$/i);
      if (!m) throw new FormError("admin_hours_line", { n: n + 1 });
      weekly[m[1].toLowerCase()] = m[2].split(",").map((part) => {
        const r = part.trim().match(/^(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})$/);
        if (!r) throw new FormError("admin_hours_range", { n: n + 1, part: part.trim() });
        return { start: r[1].padStart(5, "0"), end: r[2].padStart(5, "0") };
      });
    }
    return weekly;
  }

  function leaveText(leave) {
    return leave.map((l) => `${l.start} ${l.end}${l.note ? " " + l.note : ""}`).join("\n");
  }

  function parseLeave(text) {
    return text.split("\n").map((s) => s.trim()).filter(Boolean).map((line, n) => {
      const m = line.match(/^(\d{4}-\d{2}-\d{2})(?:\s+(\d{4}-\d{2}-\d{2}))?\s*(.*)$/);
      if (!m) throw new FormError("admin_leave_line", { n: n + 1 });
      return { start: m[1], end: m[2] || m[1], note: m[3] || "" };
    });
  }

  function boxes(container, name, values, labels, checked) {
    container.textContent = "";
    values.forEach((v, i) => {
      const input = el("input", { type: "checkbox", name, value: v, checked: checked.includes(v) });
      container.append(el("label", {}, input, labels[i]));
    });
  }

  function topicName(id) {
    const topic = topics.find((x) => x.id === id);
    return topic ? topic.names[lang.get()] || topic.names.en : id;
  }

  function renderStaff() {
    const list = $("staff");
    list.textContent = "";
    for (const m of staff) {
      const parts = [t(`role_${m.role}`), m.languages.map((l) => window.SB_LANGUAGES.names[l] || l).join(", ")];
      if (m.topics.length) parts.push(m.topics.map(topicName).join(", "));
      if (m.leave.length) parts.push(t("admin_leave_count", { n: m.leave.length }));
      list.append(el("li", {},
        el("span", {}, el("span", { className: "who", textContent: `${m.display_name} (${m.username}) ` }), el("span", { className: "meta", textContent: parts.join(" · ") })),
        el("span", { className: "row-actions" },
          button(t("admin_edit"), "", () => editStaff(m), t("admin_edit_label", { name: m.display_name })),
          button(t("admin_delete"), "danger", () => removeStaff(m), t("admin_delete_label", { name: m.display_name })))));
    }
  }

  function renderBoxes(topicIds, languages) {
    boxes($("lang-boxes"), "languages", LANGS, LANGS.map((l) => window.SB_LANGUAGES.names[l] || l), languages);
    boxes($("topic-boxes"), "topics", topics.map((x) => x.id), topics.map((x) => topicName(x.id)), topicIds);
  }

  function editStaff(member) {
    editing = member;
    const f = $("staff-form");
    f.hidden = false;
    $("staff-title").textContent = member ? `${member.display_name} (${member.username})` : t("admin_new_staff");
    const m = member || { username: "", display_name: "", role: "counselor", timezone: "Asia/Seoul", languages: ["ko"], topics: [],
      weekly_hours: { mon: [{ start: "09:00", end: "18:00" }], tue: [{ start: "09:00", end: "18:00" }], wed: [{ start: "09:00", end: "18:00" }], thu: [{ start: "09:00", end: "18:00" }], fri: [{ start: "09:00", end: "18:00" }] }, leave: [] };
    f.username.value = m.username;
    f.username.readOnly = Boolean(member);
    f.display_name.value = m.display_name;
    f.role.value = m.role;
    f.timezone.value = m.timezone;
    f.password.value = "";
    f.querySelector(".pw").hidden = Boolean(member);
    f.weekly_hours.value = hoursText(m.weekly_hours);
    f.leave.value = leaveText(m.leave);
    renderBoxes(m.topics, m.languages);
    f.scrollIntoView({ behavior: "smooth" });
  }

  async function saveStaff(ev) {
    ev.preventDefault();
    const f = $("staff-form");
    try {
      const body = {
        username: f.username.value.trim(), display_name: f.display_name.value.trim(), role: f.role.value,
        timezone: f.timezone.value.trim(),
        languages: [...f.querySelectorAll("input[name=languages]:checked")].map((i) => i.value),
        topics: [...f.querySelectorAll("input[name=topics]:checked")].map((i) => i.value),
        weekly_hours: parseHours(f.weekly_hours.value), leave: parseLeave(f.leave.value),
      };
      if (editing) await api("PUT", `/api/staff/${encodeURIComponent(body.username)}`, body);
      else await api("POST", "/api/staff", { ...body, password: f.password.value });
      f.hidden = true;
      showError(null);
      saved(t("admin_saved", { name: body.username }));
      await load();
    } catch (e) {
      showFormError(e);
    }
  }

  async function removeStaff(m) {
    if (!confirm(t("admin_confirm_delete", { name: m.username }))) return;
    try {
      await api("DELETE", `/api/staff/${encodeURIComponent(m.username)}`);
      await load();
    } catch (e) {
      showError(e);
    }
  }

  function renderTopics() {
    const body = $("topics");
    body.textContent = "";
    for (const topic of topics) {
      body.append(el("tr", {},
        el("td", { textContent: topic.id }),
        el("td", { textContent: LANGS.filter((l) => topic.names[l]).map((l) => topic.names[l]).join(" · ") }),
        el("td", { textContent: t("admin_minutes", { n: topic.slot_minutes }) }),
        el("td", { className: "actions" },
          button(t("admin_edit"), "", () => editTopic(topic), t("admin_edit_label", { name: topic.id })),
          button(t("admin_delete"), "danger", () => removeTopic(topic), t("admin_delete_label", { name: topic.id })))));
      const heads = ["ID", t("admin_names"), t("admin_slot"), t("dash_col_actions")];
      [...body.lastElementChild.children].forEach((td, i) => { td.dataset.label = heads[i]; });
    }
  }

  function editTopic(topic) {
    const f = $("topic-form");
    f.hidden = false;
    f.id.value = topic ? topic.id : "";
    f.id.readOnly = Boolean(topic);
    f.slot_minutes.value = topic ? topic.slot_minutes : 30;
    for (const l of LANGS) f[l].value = topic ? topic.names[l] || "" : "";
    f.scrollIntoView({ behavior: "smooth" });
  }

  async function saveTopic(ev) {
    ev.preventDefault();
    const f = $("topic-form");
    const names = {};
    for (const l of LANGS) if (f[l].value.trim()) names[l] = f[l].value.trim();
    const body = { id: f.id.value.trim(), names, slot_minutes: Number(f.slot_minutes.value) };
    try {
      await api("PUT", `/api/topics/${encodeURIComponent(body.id)}`, body);
      f.hidden = true;
      showError(null);
      saved(t("admin_saved", { name: body.id }));
      await load();
    } catch (e) {
      showError(e);
    }
  }

  async function removeTopic(topic) {
    if (!confirm(t("admin_confirm_delete", { name: topic.id }))) return;
    try {
      await api("DELETE", `/api/topics/${encodeURIComponent(topic.id)}`);
      await load();
    } catch (e) {
      showError(e);
    }
  }

  function renderCenter() {
    if (!center) return;
    const days = t("admin_days").split(",");
    const order = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    const working = center.working_days.map((d) => days[order.indexOf(d)] || d);
    $("hours").textContent = `${center.opens}–${center.closes} (${center.timezone}) · ${working.join(", ")}`;
    const list = $("holidays");
    list.textContent = "";
    for (const h of center.holidays) list.append(el("li", { textContent: `${h.date} ${h.name}` }));
  }

  /** Speech models and translation routes (GET /api/captions/coverage) as a matrix:
   * one row per spoken language, its live captions, then its translation into each other. */
  function renderCoverage() {
    const box = $("coverage");
    if (!coverage || !box) return;
    const names = window.SB_LANGUAGES.names;
    const table = el("table", { className: "stack coverage" });
    const head = el("tr");
    head.append(el("th", { scope: "col", textContent: t("cov_spoken") }), el("th", { scope: "col", textContent: t("cov_speech") }));
    for (const code of LANGS) head.append(el("th", { scope: "col", textContent: t("cov_into", { lang: names[code] }) }));
    table.append(el("thead", {}, head));
    const body = el("tbody");
    for (const row of coverage.languages) {
      const tr = el("tr");
      tr.dataset.lang = row.language;
      tr.append(el("th", { scope: "row", textContent: names[row.language] || row.language }));
      const speech = el("td", { textContent: t(row.speech ? "cov_speech_yes" : "cov_speech_no") });
      speech.dataset.speech = row.speech ? "yes" : "no";
      speech.dataset.label = t("cov_speech");
      tr.append(speech);
      for (const code of LANGS) {
        const route = code === row.language ? "same" : row.translation[code] || "none";
        const cell = el("td", { textContent: route === "same" ? "·" : t(`cov_route_${route}`) });
        cell.dataset.route = route;
        cell.dataset.label = t("cov_into", { lang: names[code] });
        tr.append(cell);
      }
      body.append(tr);
    }
    table.append(body);
    box.textContent = "";
    box.append(table);
  }

  async function load() {
    try {
      [topics, staff] = await Promise.all([api("GET", "/api/topics"), api("GET", "/api/staff")]);
      renderTopics();
      renderStaff();
      center = await api("GET", "/api/center");
      renderCenter();
      coverage = await api("GET", "/api/captions/coverage");
      renderCoverage();
      $("login").hidden = true;
      $("board").hidden = false;
      $("me").hidden = false;
    } catch (e) {
      showError(e);
    }
  }

  const session = window.SB_Staff.session({
    showError,
    async onSignedIn(staff) {
      if (staff) $("me-name").textContent = staff.username;
      await load();
    },
  });
  const api = session.api;

  $("staff-new").addEventListener("click", () => editStaff(null));
  $("staff-cancel").addEventListener("click", () => { $("staff-form").hidden = true; });
  $("staff-form").addEventListener("submit", saveStaff);
  $("topic-new").addEventListener("click", () => editTopic(null));
  $("topic-cancel").addEventListener("click", () => { $("topic-form").hidden = true; });
  $("topic-form").addEventListener("submit", saveTopic);
  session.resume();
})();

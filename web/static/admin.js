/* Seoulbridge administration: staff (roles, languages, topics, weekly hours, leave),
 * topics (names in five languages, slot length), center hours and Korean holidays. */
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const { el, button } = window.SB_Staff;
  const LANGS = window.SB_LANGUAGES.codes; // from /languages.js (kernel/languages.py)
  const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
  let topics = [];
  let staff = [];
  let editing = null;

  function showError(message) {
    $("error").textContent = message || "";
    $("error").hidden = !message;
    if (message) {
      $("saved").hidden = true;
      $("error").scrollIntoView({ behavior: "smooth", block: "center" });
    }
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
      if (!m) throw new Error(`Weekly hours line ${n + 1}: write e.g. "mon 09:00-18:00"`);
      weekly[m[1].toLowerCase()] = m[2].split(",").map((part) => {
        const r = part.trim().match(/^(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})$/);
        if (!r) throw new Error(`Weekly hours line ${n + 1}: "${part.trim()}" should look like 09:00-18:00`);
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
      if (!m) throw new Error(`Leave line ${n + 1}: write "2026-12-24 2026-12-31 note"`);
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

  function renderStaff() {
    const list = $("staff");
    list.textContent = "";
    for (const m of staff) {
      const info = `${m.role} · ${m.languages.join(", ")}${m.topics.length ? " · " + m.topics.join(", ") : ""}${m.leave.length ? " · 휴가 leave " + m.leave.length : ""}`;
      list.append(el("li", {},
        el("span", {}, el("span", { className: "who", textContent: `${m.display_name} (${m.username}) ` }), el("span", { className: "meta", textContent: info })),
        el("span", {}, button("편집 · Edit", "", () => editStaff(m)), button("삭제 · Delete", "danger", () => removeStaff(m)))));
    }
  }

  function editStaff(member) {
    editing = member;
    const f = $("staff-form");
    f.hidden = false;
    $("staff-title").textContent = member ? `${member.display_name} (${member.username})` : "새 직원 · New staff member";
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
    boxes($("lang-boxes"), "languages", LANGS, LANGS, m.languages);
    boxes($("topic-boxes"), "topics", topics.map((t) => t.id), topics.map((t) => `${t.names.ko} · ${t.names.en}`), m.topics);
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
      showError("");
      saved("저장됨 · Saved " + body.username);
      await load();
    } catch (e) {
      showError(e.message);
    }
  }

  async function removeStaff(m) {
    if (!confirm(`${m.username}: 삭제할까요? · Delete?`)) return;
    try {
      await api("DELETE", `/api/staff/${encodeURIComponent(m.username)}`);
      await load();
    } catch (e) {
      showError(e.message);
    }
  }

  function renderTopics() {
    const body = $("topics");
    body.textContent = "";
    for (const t of topics) {
      body.append(el("tr", {},
        el("td", { textContent: t.id }),
        el("td", { textContent: LANGS.filter((l) => t.names[l]).map((l) => t.names[l]).join(" · ") }),
        el("td", { textContent: t.slot_minutes + "분 · min" }),
        el("td", { className: "actions" }, button("편집 · Edit", "", () => editTopic(t)), button("삭제 · Delete", "danger", () => removeTopic(t)))));
    }
  }

  function editTopic(t) {
    const f = $("topic-form");
    f.hidden = false;
    f.id.value = t ? t.id : "";
    f.id.readOnly = Boolean(t);
    f.slot_minutes.value = t ? t.slot_minutes : 30;
    for (const l of LANGS) f[l].value = t ? t.names[l] || "" : "";
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
      showError("");
      saved("저장됨 · Saved " + body.id);
      await load();
    } catch (e) {
      showError(e.message);
    }
  }

  async function removeTopic(t) {
    if (!confirm(`${t.id}: 삭제할까요? · Delete?`)) return;
    try {
      await api("DELETE", `/api/topics/${encodeURIComponent(t.id)}`);
      await load();
    } catch (e) {
      showError(e.message);
    }
  }

  async function load() {
    try {
      [topics, staff] = await Promise.all([api("GET", "/api/topics"), api("GET", "/api/staff")]);
      renderTopics();
      renderStaff();
      const center = await api("GET", "/api/center");
      $("hours").textContent = `${center.opens}–${center.closes} ${center.timezone} · ${center.working_days.join(", ")}`;
      const list = $("holidays");
      list.textContent = "";
      for (const h of center.holidays) list.append(el("li", { textContent: `${h.date} ${h.name}` }));
      $("login").hidden = true;
      $("board").hidden = false;
      $("me").hidden = false;
    } catch (e) {
      showError(e.message);
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

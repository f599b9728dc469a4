/* Seoulbridge resident booking page: topic, language, free slots in local time, book,
 * receive the link; or join the walk-in queue. Talks to /api/topics, /api/availability,
 * /api/bookings and /api/queue. Words in ko, en, ja, zh, ru from i18n.js; a refusal is
 * worded by its code (and the fields it names), never with the server's English. */
(function () {
  "use strict";

  // Every word comes from the one catalogue (i18n.js, keys book_* and err_*).
  const I18N = window.SB_I18N;
  const LANGS = window.SB_LANGUAGES.codes; // from /languages.js (kernel/languages.py)
  const LOCALES = { ko: "ko-KR", en: "en-GB", ja: "ja-JP", zh: "zh-CN", ru: "ru-RU" };
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);

  let lang = I18N.pageLanguage("en");
  let topics = [];
  let chosen = null;
  let booking = null;
  let ticket = null;
  let pollTimer = null;

  function t(key, vars) {
    return I18N.t(lang, key, vars);
  }

  let lastError = null; // the refusal shown, re-worded when the language changes
  let lastTicket = null;

  function applyLang() {
    I18N.applyStrings(lang);
    $("ui-lang").value = lang;
    document.title = "Seoulbridge · " + t("book_title");
    fillTopics();
    if (chosen) renderSlots(chosen.availability);
    if (booking) renderBooking();
    if (lastTicket) renderTicket(lastTicket);
    if (lastError) showError(lastError);
  }

  /** Show a refusal (an ApiError, or {code}) in the page's language; null hides the box. */
  function showError(err) {
    lastError = err || null;
    const box = $("error");
    const text = err ? I18N.errorText(lang, err) : "";
    box.dataset.code = err ? err.code || "" : "";
    box.textContent = text;
    box.hidden = !text;
    if (text) box.scrollIntoView({ behavior: "smooth", block: "center" });
  }

  function api(method, url, body) {
    return I18N.fetchJson(url, {
      method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
  }

  function fmt(iso, zone, opts) {
    return new Intl.DateTimeFormat(LOCALES[lang], { timeZone: zone, ...opts }).format(new Date(iso));
  }

  function fillTopics() {
    const sel = $("topic");
    const current = sel.value;
    sel.textContent = "";
    for (const topic of topics) {
      const opt = document.createElement("option");
      opt.value = topic.id;
      opt.textContent = topic.names[lang] || topic.names.en;
      sel.append(opt);
    }
    if (current) sel.value = current;
  }

  function fillZones() {
    const here = Intl.DateTimeFormat().resolvedOptions().timeZone || "Asia/Seoul";
    $("tz").value = params.get("tz") || here;
    const list = $("tz-list");
    const zones = Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : [here];
    for (const z of zones) {
      const opt = document.createElement("option");
      opt.value = z;
      list.append(opt);
    }
  }

  function setMode(now) {
    document.body.classList.toggle("mode-now", now);
    $("tab-book").setAttribute("aria-pressed", String(!now));
    $("tab-now").setAttribute("aria-pressed", String(now));
    $("step-slots").hidden = true;
    $("step-details").hidden = true;
    showError(null);
  }

  async function showSlots() {
    showError(null);
    const q = new URLSearchParams({
      topic: $("topic").value, language: $("spoken").value, timezone: $("tz").value.trim(),
      needs_interpreter: String($("interp").checked), days: "14",
    });
    try {
      const availability = await api("GET", "/api/availability?" + q);
      chosen = { availability, slot: null };
      renderSlots(availability);
      $("step-slots").hidden = false;
      $("step-details").hidden = true;
      $("step-slots").scrollIntoView({ behavior: "smooth" });
    } catch (e) {
      showError(e);
    }
  }

  function renderSlots(av) {
    const zone = av.timezone;
    $("tz-note").textContent = t("book_tz_note", { tz: zone });
    const box = $("slots");
    box.textContent = "";
    if (!av.slots.length) {
      box.textContent = t("book_no_slots");
      return;
    }
    let day = null;
    let grid = null;
    for (const slot of av.slots) {
      const label = fmt(slot.start, zone, { weekday: "long", month: "long", day: "numeric" });
      if (label !== day) {
        day = label;
        const h = document.createElement("div");
        h.className = "day";
        h.textContent = label;
        grid = document.createElement("div");
        grid.className = "slots";
        box.append(h, grid);
      }
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = fmt(slot.start, zone, { hour: "2-digit", minute: "2-digit" });
      const small = document.createElement("small");
      small.textContent = t("book_seoul") + " " + fmt(slot.start, "Asia/Seoul", { hour: "2-digit", minute: "2-digit" });
      b.append(small);
      b.addEventListener("click", () => pickSlot(slot));
      grid.append(b);
    }
  }

  function pickSlot(slot) {
    if (booking) return moveBooking(slot);
    chosen.slot = slot;
    const zone = chosen.availability.timezone;
    $("chosen").textContent = fmt(slot.start, zone, { dateStyle: "full", timeStyle: "short" });
    $("step-details").hidden = false;
    $("name").focus();
  }

  async function submitBooking(ev) {
    ev.preventDefault();
    showError(null);
    const body = {
      name: $("name").value, contact: $("contact").value, country: $("country").value,
      timezone: chosen.availability.timezone, language: $("spoken").value,
      topic: $("topic").value, slot_start: chosen.slot.start, needs_interpreter: $("interp").checked,
    };
    try {
      booking = await api("POST", "/api/bookings", body);
      localStorage.setItem("sb-country", body.country);
      history.replaceState(null, "", `/book?booking=${booking.id}&key=${encodeURIComponent(booking.manage_key)}&lang=${lang}`);
      renderBooking();
    } catch (e) {
      showError(e);
      if (e.code === "slot_taken" || e.code === "no_interpreter") showSlots().then(() => showError(e));
    }
  }

  function renderBooking() {
    for (const id of ["step-choose", "step-slots", "step-details"]) $(id).hidden = true;
    document.querySelector(".tabs").hidden = true;
    $("step-done").hidden = false;
    const when = fmt(booking.start, booking.timezone, { dateStyle: "full", timeStyle: "short" });
    $("done-when").textContent = booking.state === "cancelled" ? t("book_cancelled") : when;
    $("join-link").value = booking.join_url || "";
    $("join-open").href = booking.join_url || "#";
    $("ics").href = booking.ics_url.replace(/^https?:\/\/[^/]+/, "");
    $("step-done").dataset.state = booking.state;
    // The link stays for the whole slot, also once the consultation has started.
    const changeable = booking.state === "confirmed";
    const hasLink = Boolean(booking.join_url);
    for (const id of ["copy", "join-open", "join-box"]) $(id).hidden = !hasLink;
    for (const id of ["cancel", "change"]) $(id).hidden = !changeable;
    const note = { in_session: "book_in_session", completed: "book_over", no_show: "book_over" }[booking.state];
    $("done-note").hidden = !note;
    $("done-note").textContent = note ? t(note) : "";
  }

  async function showMoveSlots() {
    showError(null);
    const q = new URLSearchParams({
      topic: booking.topic, language: booking.language, timezone: booking.timezone,
      needs_interpreter: String(Boolean(booking.interpreter)), days: "14",
    });
    try {
      const availability = await api("GET", "/api/availability?" + q);
      chosen = { availability, slot: null };
      renderSlots(availability);
      $("step-slots").hidden = false;
      $("step-slots").scrollIntoView({ behavior: "smooth" });
    } catch (e) {
      showError(e);
    }
  }

  async function moveBooking(slot) {
    showError(null);
    const key = params.get("key") || booking.manage_key;
    try {
      booking = await api("POST", `/api/bookings/${booking.id}/reschedule?key=${encodeURIComponent(key)}`, { slot_start: slot.start });
      chosen = null;
      renderBooking();
      $("step-done").scrollIntoView({ behavior: "smooth" });
    } catch (e) {
      showError(e);
    }
  }

  async function loadBooking() {
    const key = params.get("key");
    try {
      booking = await api("GET", `/api/bookings/${encodeURIComponent(params.get("booking"))}?key=${encodeURIComponent(key)}`);
      renderBooking();
    } catch (e) {
      showError(e);
    }
  }

  async function cancelBooking() {
    if (!confirm(t("book_confirm_cancel"))) return;
    try {
      booking = await api("POST", `/api/bookings/${booking.id}/cancel?key=${encodeURIComponent(params.get("key") || booking.manage_key)}`);
      renderBooking();
    } catch (e) {
      showError(e);
    }
  }

  async function joinQueue() {
    showError(null);
    try {
      ticket = await api("POST", "/api/queue", {
        name: $("q-name").value, topic: $("topic").value, language: $("spoken").value,
        needs_interpreter: $("interp").checked,
      });
      localStorage.setItem("sb-ticket", JSON.stringify({ id: ticket.id, key: ticket.ticket_key }));
      $("step-choose").hidden = true;
      document.querySelector(".tabs").hidden = true;
      $("step-queue").hidden = false;
      renderTicket(ticket);
      pollTimer = setInterval(pollTicket, 4000);
    } catch (e) {
      showError(e);
    }
  }

  async function pollTicket() {
    const saved = JSON.parse(localStorage.getItem("sb-ticket") || "null");
    if (!saved) return;
    try {
      const view = await api("GET", `/api/queue/${saved.id}?key=${encodeURIComponent(saved.key)}`);
      showError(null);
      renderTicket(view);
    } catch (e) {
      showError(e);
      if (e.code === "unknown_ticket" || e.code === "wrong_booking_key") {
        // The place is gone (expired and cleaned up): back to the start, with the reason.
        clearInterval(pollTimer);
        localStorage.removeItem("sb-ticket");
        $("step-queue").hidden = true;
        $("step-choose").hidden = false;
        document.querySelector(".tabs").hidden = false;
      }
    }
  }

  function waitText(view) {
    if (view.estimated_wait_s == null) return t("book_wait_unknown");
    const minutes = Math.round(view.estimated_wait_s / 60);
    return minutes < 1 ? t("book_wait_soon") : t("book_wait", { m: minutes });
  }

  function renderTicket(view) {
    lastTicket = view;
    const done = ["left", "expired", "done"].includes(view.state);
    // Honest: with nobody who can serve now, say so and offer what can be done instead.
    const why = view.state === "waiting" ? view.unavailable : null;
    $("q-unavailable").hidden = !why;
    $("q-unavailable").dataset.reason = why || "";
    $("q-no-interp").hidden = why !== "no_interpreter";
    if (why) {
      const language = window.SB_LANGUAGES.names[view.language] || view.language;
      $("q-unavailable-text").textContent = t(why === "no_interpreter" ? "book_no_interpreter" : "book_no_counselor", { lang: language });
    }
    if (view.state === "waiting") {
      $("q-position").textContent = t("book_position", { n: view.position });
      $("q-wait").textContent = why ? "" : waitText(view);
    } else if (view.state === "matched") {
      $("q-position").textContent = t("book_matched");
      $("q-wait").textContent = "";
      if (view.join_url) {
        $("q-link").href = view.join_url;
        $("q-ready").hidden = false;
      }
    } else {
      $("q-position").textContent = t(view.state === "expired" ? "book_expired" : "book_left");
      $("q-wait").textContent = "";
    }
    $("q-leave").hidden = done || view.state === "matched";
    if (done) {
      clearInterval(pollTimer);
      localStorage.removeItem("sb-ticket");
    }
  }

  async function leaveQueue() {
    const saved = JSON.parse(localStorage.getItem("sb-ticket") || "null");
    if (!saved) return;
    try {
      renderTicket(await api("DELETE", `/api/queue/${saved.id}?key=${encodeURIComponent(saved.key)}`));
    } catch (e) {
      showError(e);
    }
  }

  async function withoutInterpreter() {
    const saved = JSON.parse(localStorage.getItem("sb-ticket") || "null");
    if (!saved) return;
    try {
      renderTicket(await api("POST", `/api/queue/${saved.id}/without-interpreter?key=${encodeURIComponent(saved.key)}`));
      showError(null);
    } catch (e) {
      showError(e);
    }
  }

  /** Leave the queue for a booking, keeping topic and language. */
  async function bookInstead() {
    await leaveQueue();
    clearInterval(pollTimer);
    localStorage.removeItem("sb-ticket");
    lastTicket = null;
    $("step-queue").hidden = true;
    $("step-choose").hidden = false;
    document.querySelector(".tabs").hidden = false;
    setMode(false);
    $("show").focus();
  }

  function autoInterpreter() {
    $("interp").checked = $("spoken").value !== "ko";
  }

  async function init() {
    I18N.fillLanguageSelect($("ui-lang"), lang, (next) => {
      lang = next;
      applyLang();
    });
    for (const code of I18N.LANGUAGES) $("spoken").add(new Option(I18N.NATIVE_NAMES[code], code));
    $("tab-book").addEventListener("click", () => setMode(false));
    $("tab-now").addEventListener("click", () => setMode(true));
    $("show").addEventListener("click", showSlots);
    $("spoken").addEventListener("change", autoInterpreter);
    $("details").addEventListener("submit", submitBooking);
    $("copy").addEventListener("click", async () => {
      await navigator.clipboard.writeText(booking.join_url);
      $("copy").textContent = t("book_copied");
    });
    $("cancel").addEventListener("click", cancelBooking);
    $("change").addEventListener("click", showMoveSlots);
    $("q-join").addEventListener("click", joinQueue);
    $("q-leave").addEventListener("click", leaveQueue);
    $("q-no-interp").addEventListener("click", withoutInterpreter);
    $("q-book").addEventListener("click", bookInstead);
    $("spoken").value = lang;
    autoInterpreter();
    fillZones();
    const region = (navigator.language.split("-")[1] || "").toUpperCase();
    $("country").value = localStorage.getItem("sb-country") || (region.length === 2 ? region : "");
    applyLang();
    if (params.get("booking") && params.get("key")) return loadBooking();
    if (params.get("mode") === "now") setMode(true);
    try {
      topics = await api("GET", "/api/topics");
      fillTopics();
      if (params.get("topic")) $("topic").value = params.get("topic");
    } catch (e) {
      showError(e);
    }
    if (localStorage.getItem("sb-ticket")) {
      $("step-choose").hidden = true;
      document.querySelector(".tabs").hidden = true;
      $("step-queue").hidden = false;
      pollTicket();
      pollTimer = setInterval(pollTicket, 4000);
    }
  }

  init();
})();

/* Seoulbridge counselor dashboard: staff sign-in, today's bookings (Seoul time), the live
 * walk-in queue, available/away, lobby knocks with a sound alert, one click to open the
 * room and start. Polls GET /api/dashboard every 3 seconds. Words in five languages from
 * i18n.js; on phones the tables are stacked as cards (dashboard.css). */
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const { el, button } = window.SB_Staff;
  const LANG_NAMES = window.SB_LANGUAGES.names;
  const LOCALES = { ko: "ko-KR", en: "en-GB", ja: "ja-JP", zh: "zh-CN", ru: "ru-RU" };
  let session = null;
  let topics = {}; // id -> names per language
  let timer = null;
  let audio = null;
  let knownKnocks = new Set();
  let knownWalkins = new Set();
  let presence = "away";
  let last = null; // the last dashboard, re-rendered when the language changes

  const lang = window.SB_Staff.language(() => {
    errors.rerender();
    if (last) render(last);
    else renderPresence(presence);
  });
  const t = lang.t;
  const errors = window.SB_Staff.errorBox(lang);
  const showError = errors.show;

  function api(method, url, body) {
    return session.api(method, url, body);
  }

  function beep() {
    try {
      audio = audio || new AudioContext();
      const now = audio.currentTime;
      for (const [i, freq] of [880, 660, 880].entries()) {
        const osc = audio.createOscillator();
        const gain = audio.createGain();
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0.0001, now + i * 0.25);
        gain.gain.exponentialRampToValueAtTime(0.3, now + i * 0.25 + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.25 + 0.22);
        osc.connect(gain).connect(audio.destination);
        osc.start(now + i * 0.25);
        osc.stop(now + i * 0.25 + 0.24);
      }
    } catch (e) {
      /* no audio: the visual alert remains */
    }
  }

  function seoulTime(iso) {
    return new Intl.DateTimeFormat(LOCALES[lang.get()], { timeZone: "Asia/Seoul", hour: "2-digit", minute: "2-digit", hour12: false }).format(new Date(iso));
  }

  function topicName(id) {
    const names = topics[id];
    return names ? names[lang.get()] || names.en || id : id;
  }

  async function act(fn) {
    try {
      await fn();
      showError(null);
      await refresh();
    } catch (e) {
      showError(e);
    }
  }

  /**
   * Open a room in a new tab. The tab is opened inside the click (so no pop-up blocker
   * stops it) and sent to the room only once `before()` succeeded: a refused start (too
   * early) leaves no tab behind and changes nothing.
   */
  async function openRoom(url, before) {
    const tab = window.open("", "_blank");
    if (!tab) {
      showError({ code: "popup_blocked" });
      return;
    }
    try {
      if (before) await before();
    } catch (e) {
      tab.close();
      throw e;
    }
    tab.opener = null;
    tab.location.href = url;
  }

  function startRoom(b) {
    return () =>
      act(() =>
        openRoom(b.join_url, async () => {
          if (b.state === "confirmed") await api("POST", `/api/bookings/${b.id}/state`, { state: "in_session" });
        }),
      );
  }

  function renderBookings(rows) {
    const body = $("bookings");
    body.textContent = "";
    $("no-bookings").hidden = rows.length > 0;
    body.closest("table").hidden = rows.length === 0;
    const heads = ["dash_col_time", "dash_col_resident", "dash_col_topic", "dash_col_interpreter", "dash_col_state", "dash_col_actions"].map((k) => t(k));
    const now = Date.now();
    for (const b of rows) {
      const state = b.knocking
        ? el("span", { className: "badge knock", textContent: t("dash_knocking") })
        : el("span", { className: "badge " + b.state, textContent: t(`dash_state_${b.state}`) });
      const actions = [];
      const open = b.join_url && (b.state === "confirmed" || b.state === "in_session");
      if (open && b.state === "confirmed" && new Date(b.opens_at).getTime() > now) {
        // Not yet: say when, instead of a button that would be refused.
        actions.push(el("span", { className: "opens", textContent: t("dash_opens_at", { time: seoulTime(b.opens_at) }) }));
      } else if (open) {
        actions.push(button(t(b.state === "confirmed" ? "dash_open_start" : "dash_open"), "primary", startRoom(b)));
      }
      if (b.state === "in_session") {
        actions.push(button(t("dash_done"), "", () => act(() => api("POST", `/api/bookings/${b.id}/state`, { state: "completed" }))));
      }
      if (b.state === "confirmed") {
        actions.push(button(t("dash_no_show"), "quiet", () => act(() => api("POST", `/api/bookings/${b.id}/state`, { state: "no_show" }))));
      }
      const values = [
        el("strong", { textContent: `${seoulTime(b.seoul_start)}–${seoulTime(b.seoul_end)}` }),
        [b.resident_name, el("span", { className: "sub", textContent: `${LANG_NAMES[b.language] || b.language} · ${b.country}` })],
        topicName(b.topic),
        b.interpreter || "—",
        state,
        actions,
      ];
      const tr = el("tr");
      tr.dataset.id = b.id;
      tr.dataset.state = b.state;
      values.forEach((v, i) => {
        const td = el("td", { className: i === 5 ? "actions" : "" }, ...[].concat(v));
        td.dataset.label = heads[i]; // shown beside the value when rows stack as cards
        tr.append(td);
      });
      body.append(tr);
    }
  }

  function renderWalkins(rows) {
    const list = $("walkins");
    list.textContent = "";
    $("no-walkins").hidden = rows.length > 0;
    for (const w of rows) {
      const badge = w.knocking ? el("span", { className: "badge knock", textContent: t("dash_knocking") }) : null;
      const actions = el("span", { className: "row-actions" });
      if (w.join_url) actions.append(button(t("dash_open"), "primary", () => act(() => openRoom(w.join_url))));
      actions.append(button(t("dash_done"), "", () => act(() => api("POST", `/api/queue/${w.id}/state`, { state: "done" }))));
      actions.append(button(t("dash_left"), "quiet", () => act(() => api("POST", `/api/queue/${w.id}/state`, { state: "left" }))));
      const meta = [topicName(w.topic), LANG_NAMES[w.language] || w.language];
      if (w.interpreter) meta.push(t("dash_interp", { name: w.interpreter }));
      list.append(el("li", {},
        el("span", {}, el("span", { className: "who", textContent: w.name + " " }), badge,
          el("span", { className: "meta", textContent: " " + meta.join(" · ") })),
        actions));
    }
  }

  function renderQueue(rows) {
    const list = $("queue");
    list.textContent = "";
    $("queue-count").textContent = `(${rows.length})`;
    if (!rows.length) list.append(el("li", { className: "hint", textContent: t("dash_queue_empty") }));
    rows.forEach((q, i) => {
      const meta = [topicName(q.topic), LANG_NAMES[q.language] || q.language];
      if (q.needs_interpreter) meta.push(t("dash_needs_interp"));
      const waited = [t("dash_minutes", { n: Math.floor(q.waited_s / 60) })];
      if (!q.connected) waited.push(t("dash_disconnected"));
      list.append(el("li", {},
        el("span", {}, el("span", { className: "who", textContent: `${i + 1}. ${q.name}` }),
          el("span", { className: "meta", textContent: " " + meta.join(" · ") })),
        el("span", { className: "meta", textContent: waited.join(" · ") })));
    });
  }

  function renderPresence(value) {
    presence = value;
    const b = $("presence");
    b.className = "presence " + value;
    const label = t(`dash_presence_${value}`);
    b.textContent = label;
    b.setAttribute("aria-label", t("dash_presence_label", { state: label }));
  }

  function alertKnocks(data) {
    const knocks = [];
    for (const b of data.bookings) if (b.knocking) knocks.push({ id: "b" + b.id, text: `${seoulTime(b.seoul_start)} ${b.resident_name}`, url: b.join_url, booking: b });
    for (const w of data.walk_ins) if (w.knocking) knocks.push({ id: "q" + w.id, text: `${w.name} (${t("dash_walkin")})`, url: w.join_url });
    const list = $("knock-list");
    list.textContent = "";
    for (const k of knocks) {
      const li = el("li", {}, k.text + " ");
      if (k.url) li.append(button(t("dash_admit"), "primary", k.booking ? startRoom(k.booking) : () => act(() => openRoom(k.url))));
      list.append(li);
    }
    $("knocks").hidden = knocks.length === 0;
    return knocks;
  }

  function render(data) {
    last = data;
    $("me-name").textContent = data.username;
    $("today").textContent = new Intl.DateTimeFormat(LOCALES[lang.get()], { timeZone: "Asia/Seoul", dateStyle: "full" }).format(new Date(data.now_seoul));
    renderPresence(data.presence);
    renderBookings(data.bookings);
    renderWalkins(data.walk_ins);
    renderQueue(data.queue);
    return alertKnocks(data);
  }

  async function refresh() {
    if (!session.signedIn()) return;
    try {
      const data = await api("GET", "/api/dashboard");
      const knocks = render(data);
      const ids = new Set(knocks.map((k) => k.id));
      const fresh = [...ids].some((id) => !knownKnocks.has(id));
      const walkins = new Set(data.walk_ins.map((w) => w.id));
      const newWalkin = [...walkins].some((id) => !knownWalkins.has(id));
      if (fresh || newWalkin) beep();
      knownKnocks = ids;
      knownWalkins = walkins;
    } catch (e) {
      showError(e);
    }
  }

  function showBoard() {
    $("login").hidden = true;
    $("board").hidden = false;
    $("me").hidden = false;
    refresh();
    clearInterval(timer);
    timer = setInterval(refresh, 3000);
    listen();
  }

  /* Knocks, lobby, room and queue changes from every node (GET /api/events, server-sent
   * events): the board refreshes at once instead of at its next poll. */
  let stream = null;
  let refreshSoon = null;
  const heard = (window.SB_DASHBOARD_EVENTS = []); // the latest event types, for tests

  async function listen() {
    if (stream) return;
    const controller = (stream = new AbortController());
    let pause = 500;
    while (stream === controller && session.signedIn()) {
      try {
        const resp = await fetch("/api/events", { headers: { Authorization: session.authorization() }, signal: controller.signal, cache: "no-store" });
        if (!resp.ok || !resp.body) throw new Error(`HTTP ${resp.status}`);
        pause = 500;
        const reader = resp.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const type = (block.match(/^event: (.*)$/m) || [])[1];
            if (type) onEvent(type);
          }
        }
      } catch (e) {
        if (controller.signal.aborted) return;
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 10000);
    }
  }

  function stopListening() {
    if (stream) stream.abort();
    stream = null;
  }

  function onEvent(type) {
    heard.push(type);
    if (heard.length > 50) heard.shift();
    clearTimeout(refreshSoon);
    refreshSoon = setTimeout(refresh, 150); // one refresh for a burst of events
  }

  async function init() {
    session = window.SB_Staff.session({
      showError,
      beforeSignIn() {
        audio = audio || new AudioContext(); // unlocked by this click, for later alerts
      },
      onSignedIn: showBoard,
      onSignedOut() {
        clearInterval(timer);
        stopListening();
        last = null;
      },
    });
    $("presence").addEventListener("click", () => act(async () => {
      const next = presence === "away" ? "available" : "away";
      renderPresence((await api("POST", "/api/presence", { status: next })).status);
    }));
    document.addEventListener("click", () => { if (audio && audio.state === "suspended") audio.resume(); });
    try {
      for (const topic of await api("GET", "/api/topics")) topics[topic.id] = topic.names;
    } catch (e) {
      /* topic ids are shown instead */
    }
    session.resume();
  }

  init();
})();

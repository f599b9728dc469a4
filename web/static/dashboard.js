/* Seoulbridge counselor dashboard: staff sign-in, today's bookings (Seoul time), the live
 * walk-in queue, available/away, lobby knocks with a sound alert, one click to open the
 * room and start. Polls GET /api/dashboard every 3 seconds. */
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const { el, button } = window.SB_Staff;
  const STATE_LABEL = {
    confirmed: "예정 · booked", in_session: "진행 중 · in session", completed: "완료 · done",
    cancelled: "취소 · cancelled", no_show: "불참 · no-show",
  };
  const LANG = { ko: "한국어", en: "English", ja: "日本語", zh: "中文", ru: "Русский" };
  let session = null;
  let topics = {};
  let timer = null;
  let audio = null;
  let knownKnocks = new Set();
  let knownWalkins = new Set();
  let presence = "away";

  function showError(message) {
    $("error").textContent = message || "";
    $("error").hidden = !message;
  }

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
    return new Intl.DateTimeFormat("ko-KR", { timeZone: "Asia/Seoul", hour: "2-digit", minute: "2-digit", hour12: false }).format(new Date(iso));
  }

  function minutes(s) {
    return Math.floor(s / 60) + "분 · min";
  }

  async function act(fn) {
    try {
      await fn();
      showError("");
      await refresh();
    } catch (e) {
      showError(e.message);
    }
  }

  function openRoom(url) {
    window.open(url, "_blank", "noopener");
  }

  function renderBookings(rows) {
    const body = $("bookings");
    body.textContent = "";
    $("no-bookings").hidden = rows.length > 0;
    for (const b of rows) {
      const state = b.knocking ? el("span", { className: "badge knock", textContent: "로비 대기 · knocking" })
        : el("span", { className: "badge " + b.state, textContent: STATE_LABEL[b.state] || b.state });
      const actions = el("td", { className: "actions" });
      if (b.join_url && (b.state === "confirmed" || b.state === "in_session")) {
        actions.append(button(b.state === "confirmed" ? "입장·시작 · Open & start" : "열기 · Open", "primary", () => act(async () => {
          openRoom(b.join_url);
          if (b.state === "confirmed") await api("POST", `/api/bookings/${b.id}/state`, { state: "in_session" });
        })));
      }
      if (b.state === "in_session") {
        actions.append(button("완료 · Done", "", () => act(() => api("POST", `/api/bookings/${b.id}/state`, { state: "completed" }))));
      }
      if (b.state === "confirmed") {
        actions.append(button("불참 · No-show", "quiet", () => act(() => api("POST", `/api/bookings/${b.id}/state`, { state: "no_show" }))));
      }
      body.append(el("tr", {},
        el("td", {}, el("strong", { textContent: `${seoulTime(b.seoul_start)}–${seoulTime(b.seoul_end)}` })),
        el("td", {}, b.resident_name, el("span", { className: "sub", textContent: `${LANG[b.language] || b.language} · ${b.country}` })),
        el("td", { textContent: topics[b.topic] || b.topic }),
        el("td", { textContent: b.interpreter || "—" }),
        el("td", {}, state),
        actions));
    }
  }

  function renderWalkins(rows) {
    const list = $("walkins");
    list.textContent = "";
    $("no-walkins").hidden = rows.length > 0;
    for (const t of rows) {
      const badge = t.knocking ? el("span", { className: "badge knock", textContent: "로비 대기 · knocking" }) : null;
      const actions = el("span", {});
      if (t.join_url) actions.append(button("입장 · Open", "primary", () => openRoom(t.join_url)));
      actions.append(button("완료 · Done", "", () => act(() => api("POST", `/api/queue/${t.id}/state`, { state: "done" }))));
      actions.append(button("이탈 · Left", "quiet", () => act(() => api("POST", `/api/queue/${t.id}/state`, { state: "left" }))));
      list.append(el("li", {},
        el("span", {}, el("span", { className: "who", textContent: t.name + " " }), badge,
          el("span", { className: "meta", textContent: ` ${topics[t.topic] || t.topic} · ${LANG[t.language] || t.language}${t.interpreter ? " · 통역 " + t.interpreter : ""}` })),
        actions));
    }
  }

  function renderQueue(rows) {
    const list = $("queue");
    list.textContent = "";
    $("queue-count").textContent = `(${rows.length})`;
    if (!rows.length) list.append(el("li", { className: "hint", textContent: "대기 중인 민원인이 없습니다 · Nobody is waiting." }));
    rows.forEach((t, i) => {
      list.append(el("li", {},
        el("span", {}, el("span", { className: "who", textContent: `${i + 1}. ${t.name}` }),
          el("span", { className: "meta", textContent: ` ${topics[t.topic] || t.topic} · ${LANG[t.language] || t.language}${t.needs_interpreter ? " · 통역 필요 · interpreter" : ""}` })),
        el("span", { className: "meta", textContent: `${minutes(t.waited_s)}${t.connected ? "" : " · 연결 끊김 · disconnected"}` })));
    });
  }

  function renderPresence(value) {
    presence = value;
    const b = $("presence");
    b.className = "presence " + value;
    b.textContent = { available: "상담 가능 · Available", away: "자리 비움 · Away", busy: "상담 중 · Busy" }[value];
  }

  function alertKnocks(data) {
    const knocks = [];
    for (const b of data.bookings) if (b.knocking) knocks.push({ id: "b" + b.id, text: `${seoulTime(b.seoul_start)} ${b.resident_name}`, url: b.join_url, booking: b });
    for (const t of data.walk_ins) if (t.knocking) knocks.push({ id: "q" + t.id, text: `${t.name} (방문 · walk-in)`, url: t.join_url });
    const list = $("knock-list");
    list.textContent = "";
    for (const k of knocks) {
      const li = el("li", {}, k.text + " ");
      if (k.url) li.append(button("입장 · Admit", "primary", () => act(async () => {
        openRoom(k.url);
        if (k.booking && k.booking.state === "confirmed") await api("POST", `/api/bookings/${k.booking.id}/state`, { state: "in_session" });
      })));
      list.append(li);
    }
    $("knocks").hidden = knocks.length === 0;
    const ids = new Set(knocks.map((k) => k.id));
    const fresh = [...ids].some((id) => !knownKnocks.has(id));
    const walkins = new Set(data.walk_ins.map((t) => t.id));
    const newWalkin = [...walkins].some((id) => !knownWalkins.has(id));
    if (fresh || newWalkin) beep();
    knownKnocks = ids;
    knownWalkins = walkins;
  }

  async function refresh() {
    if (!session.signedIn()) return;
    try {
      const data = await api("GET", "/api/dashboard");
      $("me-name").textContent = data.username;
      $("today").textContent = new Intl.DateTimeFormat("ko-KR", { timeZone: "Asia/Seoul", dateStyle: "full" }).format(new Date(data.now_seoul));
      renderPresence(data.presence);
      renderBookings(data.bookings);
      renderWalkins(data.walk_ins);
      renderQueue(data.queue);
      alertKnocks(data);
    } catch (e) {
      showError(e.message);
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
      },
    });
    $("presence").addEventListener("click", () => act(async () => {
      const next = presence === "away" ? "available" : "away";
      renderPresence((await api("POST", "/api/presence", { status: next })).status);
    }));
    document.addEventListener("click", () => { if (audio && audio.state === "suspended") audio.resume(); });
    try {
      for (const t of await api("GET", "/api/topics")) topics[t.id] = t.names.ko + " · " + t.names.en;
    } catch (e) {
      /* topic ids are shown instead */
    }
    session.resume();
  }

  init();
})();

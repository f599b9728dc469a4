/* Seoulbridge call page: device check -> lobby -> call.
 *
 * Talks to the server as signaling/PROTOCOL.md describes: socket.io, every payload
 * on the event "message" with a "type" tag; one RTCPeerConnection to the server,
 * which always offers while this page only answers.
 *
 * This file is the page controller: page state, screens, socket and messages,
 * language, connection status. The rest is in one file per part, each a plain
 * script defining window.SB_* that this one attaches with the page state and
 * the functions it needs:
 *   call-media.js      camera/microphone tracks, level meter, knock chime (no DOM)
 *   call-peer.js       the RTCPeerConnection and its negotiation (no DOM)
 *   call-devices.js    device check, mic/camera buttons, meter, previews
 *   call-tiles.js      the participants' tiles, their audio, the own tile
 *   call-link.js       connection quality on the tiles and by the controls, staff's details
 *   call-lobby.js      the counselor's waiting-room panel and knocks
 *   call-chat.js       the chat panel
 *   call-recording.js  recording with consent (optional)
 *   call-identity.js   the identity check (attaches itself; gets identity_* messages)
 *   call-interpretation.js  the interpreter's channel and the listener-side mix (optional)
 *   call-observer.js   observers: the device check without devices, the banner (optional)
 * and the strings in i18n.js.
 *
 * State for tests and for other modules (captions.js) is on window.seoulbridge,
 * with stats() (received media per remote participant, from getStats()),
 * linkQuality (the latest link_quality message) and linkDetails() (call-link.js).
 * Plain scripts, no build step; call.html loads i18n.js, vendor/socket.io.min.js,
 * captions.js (optional) and the call-*.js files above before this one.
 */
(function () {
  "use strict";

  const I18N = window.SB_I18N;
  const EVENT = "message";
  const STATS_INTERVAL_MS = 500;
  // Media "disconnected" this long (no ICE answers): a new peer connection, by the join step.
  // (A browser says "disconnected" 2.5-6 s into a dead path already; a short cut closes the
  // socket and goes through the join step anyway. With 5 s a new address took 12.4 s.)
  const DISCONNECTED_WAIT_MS = 2000;
  // After a network change a browser can leave a request or a socket hanging on the old
  // path: no error, no answer. A join step is given up after this long (and tried again),
  // and a socket that said "joined" but brought no offer in this long is replaced (the
  // server offers right after "joined"; socket.io itself notices a dead socket only after
  // its ping timeout, 45 s). Measured: an answer takes < 1 s at 300 kbit/s on a loaded
  // 2-core machine; tests/browser/test_signaling_stalls.py makes both stalls.
  const JOIN_STEP_TIMEOUT_MS = 8000;
  // A join step not answered in this long is asked again beside the first, which a
  // browser has to send on a new connection: the first may sit on a kept-alive one
  // that the network change left dead (a new address took 21.6 s, two timeouts).
  const JOIN_STEP_AGAIN_MS = 2000;
  const OFFER_WAIT_MS = 8000;
  const LANG_KEY = "seoulbridge.lang";

  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ state
  const url = new URL(window.location.href);
  const pathParts = url.pathname.split("/").filter(Boolean);
  const joinIdx = pathParts.indexOf("join");

  /** Everything the page knows; also what tests read. */
  const S = {
    screen: "loading", // loading | error | check | lobby | call | final
    finalKind: null, // left | ended | denied | removed | replaced
    lang: "en",
    langChosen: false,
    roomId: joinIdx >= 0 && pathParts[joinIdx + 1] ? decodeURIComponent(pathParts[joinIdx + 1]) : (url.searchParams.get("room") || ""),
    token: url.searchParams.get("t") || url.searchParams.get("token") || "",
    you: null,
    room: null,
    iceServers: [],
    participants: {}, // id -> Participant, the others in the call
    waiting: [], // lobby, for counselors
    chat: [],
    socket: null,
    node: null, // {id, url, epoch}: the node holding the room, from the join step
    joinNodes: [], // base URLs of live nodes: where the join step may run if ours is gone
    unreachable: null, // id of the node we lost or could not reach: told to the join step
    socketState: "idle", // idle | connecting | connected | reconnecting | closed
    serverRestarting: false, // the server said it is restarting: a server disconnect is not final
    audioMuted: false,
    videoMuted: false,
    joinClickedAt: null,
    joinedAt: null,
    firstFrameAt: null, // performance.now() at the first decoded remote video frame
    firstFrameBy: {}, // participant id -> performance.now() of their first frame
    lastError: null, // {code, message}
    linkQuality: null, // the latest link_quality message, as the server sent it
    log: [],
    toasts: [], // the last few toast texts (a toast hides after 5 s; tests read these)
  };
  // The peer connection's state, read through to the CallPeer (call-peer.js).
  Object.defineProperties(S, {
    pc: { get: () => (peer ? peer.pc : null), enumerable: true },
    pcState: { get: () => (peer ? peer.state : "new"), enumerable: true },
    trackMap: { get: () => (peer ? peer.trackMap : {}), enumerable: true },
    publish: { get: () => (peer ? peer.publish : {}), enumerable: true },
    offersHandled: { get: () => (peer ? peer.offersHandled : 0), enumerable: true },
    offers: { get: () => (peer ? peer.offers : []), enumerable: true },
    // This device's camera and microphone (call-media.js).
    localStream: { get: () => media.stream, enumerable: true },
    hasAudio: { get: () => media.hasAudio, enumerable: true },
    hasVideo: { get: () => media.hasVideo, enumerable: true },
    mediaError: { get: () => media.error, enumerable: true },
  });
  window.seoulbridge = S;

  let captionsMounted = false;
  let recording = null; // call-recording.js, attached in main()
  let peer = null; // CallPeer
  const media = new window.SB_LocalMedia({ log: (...a) => log(...a) });
  let statsTimer = null;
  let toastTimer = null;
  // Parts of the page in their own files (see the top of this file).
  const lobby = window.SB_Lobby.attach({ state: S, send, t, roleName, canModerate, chime: () => media.chime() });
  const chat = window.SB_Chat.attach({ state: S, send, t });
  const link = window.SB_Link.attach({
    state: S,
    t,
    roleName,
    inbound: () => stats(),
    outbound: async () => (peer ? peer.outboundStats() : { availableOutgoingBitrate: null, video: [] }),
    log,
  });
  const tiles = window.SB_Tiles.attach({ state: S, send, t, roleName, canModerate, log, decorate: link.decorateTile });
  const interp = window.SB_Interpretation
    ? window.SB_Interpretation.attach({ state: S, send, audioContext: () => media.audioContext(), log })
    : null;
  const observer = window.SB_Observer ? window.SB_Observer.attach({ state: S, t }) : null;
  const devices = window.SB_Devices.attach({
    state: S,
    media,
    send,
    t,
    toast,
    icons: tiles.ICONS,
    renderSelf: tiles.renderSelf,
    republish: async () => {
      if (peer) await peer.republish();
    },
  });

  function log(...args) {
    const line = args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ");
    S.log.push(`${(performance.now() / 1000).toFixed(2)} ${line}`);
    if (S.log.length > 300) S.log.shift();
    console.debug("[seoulbridge]", ...args);
  }

  // ------------------------------------------------------------------- i18n
  function t(key, vars) {
    return I18N.t(S.lang, key, vars);
  }

  function tokenClaims() {
    // Read (never trust) the token's claims, only to pick the page language before
    // the server answers, so that even a refused link is explained in the right one.
    try {
      const part = S.token.split(".")[1];
      const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
      return JSON.parse(decodeURIComponent(escape(json)));
    } catch {
      return {};
    }
  }

  function pickLanguage(tokenLang) {
    const fromQuery = I18N.match(url.searchParams.get("lang"));
    if (fromQuery) return [fromQuery, true];
    let stored = null;
    try {
      stored = I18N.match(localStorage.getItem(LANG_KEY));
    } catch {
      /* storage may be disabled */
    }
    if (stored) return [stored, true];
    const fromToken = I18N.match(tokenLang);
    if (fromToken) return [fromToken, false];
    for (const tag of navigator.languages || [navigator.language]) {
      const m = I18N.match(tag);
      if (m) return [m, false];
    }
    return ["ko", false];
  }

  function setLanguage(lang, chosen) {
    S.lang = lang;
    if (chosen) {
      S.langChosen = true;
      try {
        localStorage.setItem(LANG_KEY, lang);
      } catch {
        /* ignore */
      }
    }
    document.documentElement.lang = lang;
    $("lang-select").value = lang;
    applyStrings();
    renderAll();
    if (window.Captions && typeof window.Captions.setLanguage === "function") {
      try {
        window.Captions.setLanguage(lang);
      } catch (e) {
        log("captions setLanguage failed", String(e));
      }
    }
  }

  function applyStrings() {
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    for (const el of document.querySelectorAll("[data-i18n-aria]")) el.setAttribute("aria-label", t(el.dataset.i18nAria));
    for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
    document.title = titleText();
  }

  function titleText() {
    const waiting = canModerate() && S.waiting.length ? `(${S.waiting.length}) ` : "";
    const room = S.room && S.room.title ? ` — ${S.room.title}` : "";
    return `${waiting}Seoulbridge${room}`;
  }

  function roleName(role) {
    return t(`role_${role}`);
  }

  function canModerate() {
    return !!S.you && (S.you.role === "counselor" || S.you.role === "admin");
  }

  // ----------------------------------------------------------------- screens
  function setScreen(name) {
    if (S.screen === name) return;
    log("screen", S.screen, "->", name);
    S.screen = name;
    document.body.dataset.screen = name;
    for (const el of document.querySelectorAll("main > .screen")) el.hidden = el.id !== `screen-${name}`;
    if (name === "check" || name === "lobby") devices.startMeter();
    else devices.stopMeter();
    if (name === "call") startStatsLoop();
    renderAll();
    moveFocus(name);
  }

  /** Keyboard and screen-reader users land on the new screen, not on a hidden button. */
  function moveFocus(name) {
    const active = document.activeElement;
    const lost = !active || active === document.body || !!active.closest("[hidden]");
    if (!lost) return; // still on something visible (the language switch, the chat): leave it
    const screen = $(`screen-${name}`);
    const target = name === "call" ? $("btn-mic") : screen && screen.querySelector("h1");
    if (!target) return;
    if (target.tagName === "H1") target.tabIndex = -1;
    target.focus({ preventScroll: true });
  }

  function showError(code, message) {
    S.lastError = { code: code || "unknown", message: message || "" };
    log("error", S.lastError);
    stopEverything();
    setScreen("error");
    renderError();
  }

  function renderError() {
    if (!S.lastError) return;
    const { code } = S.lastError;
    const screen = $("screen-error");
    screen.dataset.code = code;
    // Words chosen by code from the catalogue; the server's English is for the log only.
    $("error-title").textContent = t(code === "removed" ? "removed_title" : "error_title");
    $("error-text").textContent = errorText(code);
    const known = I18N.STRINGS.en[`err_${code}`] !== undefined;
    // passing refusals (the network, a full or briefly unavailable service) offer a retry
    $("error-retry").hidden = !(["network", "service_unavailable", "no_capacity"].includes(code) || !known);
  }

  function finish(kind, reason) {
    if (S.screen === "final") return;
    rememberInCall(false);
    S.finalKind = kind;
    S.finalReason = reason || "";
    log("finish", kind, reason);
    stopEverything();
    setScreen("final");
  }

  function renderFinal() {
    if (S.screen !== "final") return;
    const titles = { left: "left_title", ended: "ended_title", denied: "denied_title", removed: "removed_title", replaced: "replaced_title" };
    $("final-title").textContent = t(titles[S.finalKind] || "ended_title");
    $("screen-final").dataset.kind = S.finalKind || "";
    const reason = $("final-reason");
    // The server's default reasons (no reason typed by the counselor) have their own translation.
    const known = { ended: "reason_ended", denied: "reason_denied", removed: "reason_removed" }[S.finalKind];
    const text = known && S.finalReason === I18N.STRINGS.en[known] ? t(known) : S.finalReason;
    reason.hidden = !text;
    reason.textContent = text ? `${t("reason")}: ${text}` : "";
    $("rejoin-btn").hidden = !(S.finalKind === "left" || S.finalKind === "replaced");
  }

  function toast(text, ms = 5000) {
    const el = $("toast");
    el.textContent = text;
    S.toasts.push(text);
    if (S.toasts.length > 10) S.toasts.shift();
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => {
      el.hidden = true;
    }, ms);
  }

  // ------------------------------------------------------------- join step
  /**
   * The join step (GET /api/join-info, signaling/PROTOCOL.md): who the link is for and
   * which node holds the room. It runs on page load and before every (re)connection;
   * `unreachable` names a node we lost, so the room moves off it if it is gone. When
   * this page's own server cannot be reached, the other live nodes are tried.
   * Resolves to {ok: true, body} or {ok: false, code, message, passing}.
   */
  async function joinStep(unreachable) {
    const q = new URLSearchParams({ room: S.roomId, t: S.token });
    if (unreachable) q.set("unreachable", unreachable);
    const bases = [""].concat(S.joinNodes.filter((u) => u !== window.location.origin));
    let failed = { ok: false, code: "network", message: "", passing: true };
    for (const base of bases) {
      let res;
      let body = null;
      try {
        [res, body] = await askJoinInfo(`${base}/api/join-info?${q}`, base ? "cors" : "same-origin");
      } catch (e) {
        if (e && e.name === "TimeoutError") log("join step timed out after", JOIN_STEP_TIMEOUT_MS, "ms:", base || "this node");
        failed = { ok: false, code: "network", message: String(e), passing: true };
        continue; // that node is gone too: try the next
      }
      if (res.ok && body && body.you && body.node) {
        if (Array.isArray(body.nodes) && body.nodes.length) S.joinNodes = body.nodes;
        return { ok: true, body };
      }
      const err = (body && body.error) || {};
      return { ok: false, code: err.code || `http_${res.status}`, message: err.message || `HTTP ${res.status}`, passing: res.status >= 500 };
    }
    return failed;
  }

  /**
   * [response, JSON body or null] of one join-info request. When it has no answer after
   * JOIN_STEP_AGAIN_MS it is asked a second time beside the first; the first answer
   * wins and the other is aborted. Each ask is bounded by JOIN_STEP_TIMEOUT_MS, its body
   * too (a fetch on a dead path may never settle). Rejects when every ask made failed
   * and no other is coming (a quick real failure, like a refused connection, at once).
   */
  function askJoinInfo(href, mode) {
    return new Promise((resolve, reject) => {
      const controllers = [];
      let pending = 0;
      let done = false;
      let again = null;
      const finish = (settle, value) => {
        if (done) return;
        done = true;
        clearTimeout(again);
        for (const c of controllers) c.abort();
        settle(value);
      };
      const ask = () => {
        const controller = new AbortController();
        controllers.push(controller);
        pending += 1;
        const bound = setTimeout(() => controller.abort(new DOMException("no answer", "TimeoutError")), JOIN_STEP_TIMEOUT_MS);
        fetch(href, { cache: "no-store", credentials: "omit", mode, signal: controller.signal })
          .then(async (res) => {
            const body = await res.json().catch((e) => {
              if (controller.signal.aborted) throw e;
              return null; // not JSON: judged by the status
            });
            return [res, body];
          })
          .then(
            (answer) => finish(resolve, answer),
            (e) => {
              pending -= 1;
              if (pending === 0) finish(reject, e);
            },
          )
          .finally(() => clearTimeout(bound));
      };
      ask();
      again = setTimeout(() => {
        if (done) return;
        log("join step: no answer in", JOIN_STEP_AGAIN_MS, "ms, asking again on a new connection");
        ask();
      }, JOIN_STEP_AGAIN_MS);
    });
  }

  async function loadJoinInfo() {
    if (!S.token) return showError("token_missing", "");
    if (!window.RTCPeerConnection || !window.io || !window.SB_CallPeer || !window.SB_LocalMedia) return showError("unsupported", "");
    const step = await joinStep(null);
    if (!step.ok) return showError(step.code, step.message);
    S.you = step.body.you;
    S.room = step.body.room;
    S.node = step.body.node;
    if (S.room && S.room.state === "ended") return showError("room_ended", "");
    if (!S.langChosen && I18N.match(S.you.language)) setLanguage(I18N.match(S.you.language), false);
    S.insecure = I18N.insecureOrigin();
    $("insecure-note").hidden = !S.insecure;
    // Someone already in the call (admitted, or this tab was in it before a reload) goes
    // straight back in: no second press of Join.
    S.rejoin = Boolean(step.body.admitted) || wasInCall();
    setScreen("check");
    if (S.rejoin) {
      $("join-btn").dataset.i18n = "rejoining";
      $("join-btn").textContent = t("rejoining");
    }
    if (observer && observer.prepareCheck()) {
      // an observer publishes nothing: no devices to check
      if (S.rejoin && S.screen === "check" && !S.socket) connect();
      return;
    }
    await devices.start();
    if (S.rejoin && S.screen === "check" && !S.socket) connect();
  }

  /** This tab was in the call (sessionStorage lives as long as the tab, across reloads). */
  function inCallKey() {
    return `seoulbridge.inCall.${S.roomId}.${S.you ? S.you.id : ""}`;
  }

  function wasInCall() {
    try {
      return sessionStorage.getItem(inCallKey()) === "1";
    } catch {
      return false;
    }
  }

  function rememberInCall(yes) {
    try {
      if (yes) sessionStorage.setItem(inCallKey(), "1");
      else sessionStorage.removeItem(inCallKey());
    } catch {
      /* storage may be disabled: then a reload asks for Join again */
    }
  }

  // ------------------------------------------------------------ local media
  function localTrack(kind) {
    return media.track(kind);
  }

  // ----------------------------------------------------------------- socket
  function send(msg) {
    if (!S.socket || !S.socket.connected) {
      log("not sent (offline)", msg.type);
      return false;
    }
    S.socket.emit(EVENT, msg);
    return true;
  }

  function connect() {
    S.joinClickedAt = performance.now();
    media.audioContext(); // created inside the click, so the knock chime may play later
    $("join-btn").disabled = true;
    $("join-btn").textContent = t("joining");
    S.socketState = "connecting";
    renderConn();
    rejoin();
  }

  /** Connect socket.io to the node the join step named (never to a remembered one by itself). */
  function openSocket(node) {
    dropSocket();
    S.node = node;
    const socket = window.io(node.url, {
      path: "/socket.io/",
      auth: { token: S.token, room: S.roomId },
      transports: ["websocket"],
      reconnection: false, // every reconnection goes through the join step (rejoin)
      forceNew: true,
    });
    S.socket = socket;
    socket.on("connect", () => {
      log("socket connected", socket.id, "to", node.id);
      S.socketState = "connected";
      renderConn();
      // The server sends "welcome"; "join" follows it (also after every reconnect).
    });
    socket.on("disconnect", (reason) => {
      if (socket !== S.socket) return;
      log("socket disconnected", reason);
      if (S.screen === "final" || S.screen === "error") {
        S.socketState = "closed";
      } else if (reason === "io server disconnect" && S.serverRestarting) {
        // The server said it is restarting or the room moved: back through the join step.
        S.socketState = "reconnecting";
        reconnectLater();
      } else if (reason === "io server disconnect") {
        // The server closed us without a final message: most likely the same link
        // was opened in another window, which replaces this connection.
        S.socketState = "closed";
        finish("replaced", "");
      } else {
        // The connection to the node was lost (it may have died): the join step finds
        // the room's node again, and moves the room if that node is gone.
        S.unreachable = node.id;
        S.socketState = "reconnecting";
        reconnectLater();
      }
      renderConn();
    });
    socket.on("connect_error", (err) => {
      if (socket !== S.socket) return;
      const data = (err && err.data) || {};
      log("connect_error", err && err.message, data.code || "");
      if (!data.code) {
        // No answer from that node: try again through the join step.
        S.unreachable = node.id;
        S.socketState = S.socketState === "connecting" ? "connecting" : "reconnecting";
        renderConn();
        reconnectLater();
        return;
      }
      // Refused by the server: the refusal carries a code (signaling/PROTOCOL.md).
      const code = data.code;
      if (RETRY_CODES.has(code)) {
        // Passing: the server is restarting or the room is moving. Try again shortly.
        S.socketState = "reconnecting";
        renderConn();
        reconnectLater();
        return;
      }
      showError(code, (err && err.message) || "");
    });
    socket.on(EVENT, onMessage);
  }

  function dropSocket() {
    clearTimeout(expectOffer.timer);
    const old = S.socket;
    S.socket = null;
    if (old) {
      old.off();
      old.disconnect();
    }
  }

  /** Refusals that pass by themselves: the page connects again after a pause. */
  const RETRY_CODES = new Set(["server_restarting", "room_elsewhere", "server_error"]);

  /** Run the join step again after a growing pause (0.5 s doubling to 4 s). */
  function reconnectLater() {
    if (S.screen === "final" || S.screen === "error") return;
    clearTimeout(reconnectLater.timer);
    const attempt = (reconnectLater.attempt = (reconnectLater.attempt || 0) + 1);
    const delay = Math.min(500 * 2 ** Math.min(attempt - 1, 3), 4000);
    log("reconnecting in", delay, "ms (attempt", attempt, ")");
    reconnectLater.timer = setTimeout(rejoin, delay);
  }

  /** The join step, then a socket to the node it names; a passing failure tries again later. */
  async function rejoin() {
    if (S.screen === "final" || S.screen === "error" || (S.socket && S.socket.connected)) return;
    if (rejoin.busy) return; // one join step at a time
    rejoin.busy = true;
    const unreachable = S.unreachable;
    S.unreachable = null;
    let step;
    try {
      step = await joinStep(unreachable);
    } finally {
      rejoin.busy = false;
    }
    if (S.screen === "final" || S.screen === "error") return;
    if (!step.ok) {
      log("join step failed", step.code);
      if (!step.passing) return showError(step.code, step.message);
      S.lastError = { code: step.code, message: step.message };
      if (S.screen === "call") toast(errorText(step.code, step.message));
      reconnectLater();
      return;
    }
    log("join step: room on", step.body.node.id, step.body.node.url);
    openSocket(step.body.node);
  }

  /** The person's words for a server error code, from the catalogue (never the English). */
  function errorText(code) {
    const key = `err_${code}`;
    return I18N.STRINGS.en[key] !== undefined ? t(key) : t("err_unknown");
  }

  function onMessage(msg) {
    if (!msg || typeof msg !== "object") return;
    if (msg.type !== "offer") log("<-", msg.type);
    switch (msg.type) {
      case "welcome":
        S.serverRestarting = false;
        reconnectLater.attempt = 0;
        S.you = msg.you;
        S.room = msg.room;
        S.iceServers = msg.ice_servers || [];
        send({ type: "join" });
        break;
      case "lobby":
        setScreen("lobby");
        break;
      case "knock":
        if (canModerate()) lobby.knock(msg.participant);
        break;
      case "lobby_changed":
        S.waiting = msg.waiting || [];
        lobby.render();
        document.title = titleText();
        break;
      case "joined":
        onJoined(msg);
        break;
      case "denied":
        finish("denied", msg.reason);
        break;
      case "removed":
        finish("removed", msg.reason);
        break;
      case "ended":
        finish("ended", msg.reason);
        break;
      case "participant_joined":
        S.participants[msg.participant.id] = msg.participant;
        tiles.render();
        participantsChanged();
        break;
      case "participant_left":
        delete S.participants[msg.participant_id];
        tiles.forget(msg.participant_id);
        participantsChanged();
        break;
      case "interpretation":
        if (interp) interp.handle(msg);
        break;
      case "offer":
        clearTimeout(expectOffer.timer);
        silence.reset(); // the tracks change: media that stops may just have left
        ensurePeer().offer(msg);
        break;
      case "link_quality":
        // Connection quality as the server measures it (sent when it changes).
        S.linkQuality = msg;
        tiles.render();
        link.render();
        break;
      case "mute_changed": {
        const p = S.participants[msg.participant_id];
        if (p) {
          S.participants[msg.participant_id] = { ...p, audio_muted: msg.audio_muted, video_muted: msg.video_muted };
          tiles.render();
        }
        break;
      }
      case "chat":
        chat.handle(msg);
        break;
      case "room_state":
        if (S.room) S.room = { ...S.room, state: msg.state };
        break;
      case "record_indicator":
      case "record_consent_request":
        if (recording) recording.handle(msg);
        break;
      case "server_restarting":
        S.serverRestarting = true;
        toast(t("err_server_restarting"));
        break;
      case "room_moved":
        // This node no longer holds the room: it closes us; the join step finds the new one.
        S.serverRestarting = true;
        toast(t("err_room_elsewhere"));
        break;
      case "error":
        log("server error", msg.code, msg.message);
        S.lastError = { code: msg.code, message: msg.message };
        toast(errorText(msg.code));
        break;
      case "link_quality":
        S.linkQuality = msg;
        break;
      case "identity_verified":
        window.SB_Identity?.handle(msg); // call-identity.js
        break;
      default:
        if (typeof msg.type === "string" && msg.type.startsWith("caption")) {
          // Live captions belong to captions.js, when it is there.
          try {
            window.Captions?.handle(msg);
          } catch (e) {
            log("captions handle failed", String(e));
          }
        }
    }
  }

  /** Captions name speakers, the banner names observers, the mix knows who is who. */
  function participantsChanged() {
    link.render();
    if (window.Captions && typeof window.Captions.setParticipants === "function") window.Captions.setParticipants(S.participants);
    if (observer) observer.render();
    if (interp) interp.render();
  }

  function onJoined(msg) {
    S.you = msg.you;
    S.room = msg.room;
    S.participants = {};
    for (const p of msg.participants || []) S.participants[p.id] = p;
    if (S.joinedAt === null) S.joinedAt = performance.now();
    rememberInCall(true);
    // The room's chat so far (kept on the server): after a reload it comes back.
    chat.restore(msg.chat || []);
    setScreen("call");
    tiles.render();
    devices.render();
    devices.sendMute();
    if (!captionsMounted && window.Captions && typeof window.Captions.mount === "function") {
      captionsMounted = true;
      try {
        window.Captions.mount($("captions"), { lang: S.lang, you: S.you, participants: S.participants, send, roleName });
      } catch (e) {
        log("captions mount failed", String(e));
      }
    }
    participantsChanged();
    expectOffer();
  }

  /**
   * The server offers a new peer connection right after "joined". A socket that said
   * "joined" and then brought nothing (a path left hanging by a network change: not even
   * engine.io's pings get through) is replaced through the join step, instead of waiting
   * for socket.io's ping timeout while the server offers into the silence.
   */
  function expectOffer() {
    clearTimeout(expectOffer.timer);
    const socket = S.socket;
    expectOffer.timer = setTimeout(() => {
      if (socket !== S.socket || S.screen !== "call") return;
      log(`no offer ${OFFER_WAIT_MS / 1000} s after joining: the server's messages are not getting through; connecting again`);
      dropSocket();
      S.socketState = "reconnecting";
      renderConn();
      reconnectLater();
    }, OFFER_WAIT_MS);
  }

  // ------------------------------------------------------ peer connection
  /** The call's CallPeer (call-peer.js), made when we are first let in. */
  function ensurePeer() {
    if (!peer) {
      peer = new window.SB_CallPeer({
        send,
        localTrack,
        iceServers: S.iceServers,
        log,
        onState: (state, pc) => {
          renderConn();
          // A drop shorter than DISCONNECTED_WAIT_MS comes back by itself (ICE); a longer
          // one, or a new address (Wi-Fi to mobile), needs a new connection.
          if (state === "failed") recoverMedia(pc, 2000);
          else if (state === "disconnected") recoverMedia(pc, DISCONNECTED_WAIT_MS);
        },
        onTracks: () => {
          const remote = peer ? peer.remoteTracks() : {};
          tiles.setRemote(remote);
          if (interp) interp.setRemote(remote);
        },
      });
    }
    peer.iceServers = S.iceServers;
    return peer;
  }

  /**
   * The media path failed (network change, NAT timeout). Only the server offers, so
   * the way to a fresh peer connection is to connect the socket again: the server
   * replaces the old connection and, after "join", sends a new offer.
   */
  const recovering = new WeakSet();

  function recoverMedia(pc, waitMs, why) {
    if (S.screen !== "call" || !S.socket) return;
    setTimeout(() => {
      const state = pc.connectionState;
      const broken = why === "silent" || state === "failed" || state === "disconnected";
      if (pc !== S.pc || S.screen !== "call" || !broken || state === "closed") return;
      // Once per peer connection: the join step gives the next one. (A pause of 15 s
      // between any two left a new address right after a short cut to the browser's own
      // "failed", 19.6 s.)
      if (recovering.has(pc)) return;
      recovering.add(pc);
      const what = why === "silent" ? `silent for ${silence.silentMs / 1000} s (${state})` : `${state} for ${waitMs / 1000} s`;
      log(`media ${what}: connecting again (join step) for a new peer connection`);
      reconnectLater.attempt = 0; // a new cause: retried from the shortest pause
      dropSocket();
      S.socketState = "reconnecting";
      renderConn();
      rejoin();
    }, waitMs);
  }

  // ------------------------------------------------------------------ stats
  /**
   * Received media per remote participant, from pc.getStats() inbound-rtp reports
   * mapped through the transceiver mid -> participant map of the latest offer.
   */
  async function stats() {
    const counted = peer ? await peer.stats() : {};
    const out = {};
    for (const [id, p] of Object.entries(S.participants)) {
      out[id] = {
        name: p.name,
        role: p.role,
        ...window.SB_CallPeer.emptyStats(),
        ...(counted[id] || {}),
        firstFrameAt: S.firstFrameBy[id] ?? null,
      };
    }
    return out;
  }

  const silence = new window.SB_CallPeer.SilenceWatch({ pollMs: STATS_INTERVAL_MS });

  function startStatsLoop() {
    if (statsTimer) return;
    const tick = async () => {
      statsTimer = setTimeout(tick, STATS_INTERVAL_MS);
      if (S.screen !== "call" || !S.pc) return;
      let st;
      try {
        st = await stats();
      } catch {
        return;
      }
      S.lastStats = st;
      tiles.showStats(st);
      // A path gone silent (a new address, a dead link) is a new connection at once, not
      // after the browser's ~6 s to "disconnected" and DISCONNECTED_WAIT_MS on top.
      if (silence.pc !== S.pc) {
        silence.reset();
        silence.pc = S.pc;
      }
      const { transportBytesReceived, mediaPacketsReceived } = peer || {};
      if (peer && silence.observe(performance.now(), transportBytesReceived, mediaPacketsReceived)) {
        recoverMedia(S.pc, 0, "silent");
      }
    };
    statsTimer = setTimeout(tick, STATS_INTERVAL_MS);
  }

  // ------------------------------------------------------------ connection
  function renderConn() {
    const el = $("conn");
    el.hidden = S.socketState === "idle" || S.screen === "final" || S.screen === "error";
    let level = "warn";
    let key = "conn_connecting";
    if (S.socketState === "reconnecting") key = "conn_reconnecting";
    else if (S.socketState === "closed") [level, key] = ["bad", "conn_offline"];
    else if (S.socketState === "connected") {
      if (S.screen !== "call" || !S.pc) [level, key] = ["ok", "conn_connected"];
      else if (S.pcState === "connected") [level, key] = ["ok", "conn_connected"];
      else if (S.pcState === "failed") [level, key] = ["bad", "conn_media_failed"];
      else if (S.pcState === "disconnected") key = "conn_unstable";
      else key = "conn_media";
    }
    el.dataset.level = level;
    el.dataset.socket = S.socketState;
    el.dataset.pc = S.pc ? S.pcState : "none";
    $("conn-text").textContent = t(key);
    el.title = `${t("conn_server")}: ${S.socketState} · ${t("conn_mediaword")}: ${S.pc ? S.pcState : "—"}`;
  }

  // --------------------------------------------------------------- rendering
  function renderAll() {
    renderError();
    renderFinal();
    renderConn();
    devices.render();
    lobby.render();
    chat.render();
    tiles.render();
    link.render();
    if (recording) recording.render();
    if (observer) observer.render();
    if (interp) interp.render();
    $("btn-end").hidden = !canModerate();
    if (S.you) {
      $("who-name").textContent = S.you.name;
      $("who-role").textContent = roleName(S.you.role);
      $("who-role").dataset.role = S.you.role;
    }
    $("room-title").textContent = S.room ? S.room.title : "";
    $("call-heading").textContent = S.room && S.room.title ? S.room.title : t("consultation");
    document.title = titleText();
  }

  // ------------------------------------------------------------- teardown
  function stopEverything() {
    devices.stopMeter();
    clearTimeout(statsTimer);
    statsTimer = null;
    clearTimeout(reconnectLater.timer);
    if (S.socket) {
      S.socket.off(EVENT, onMessage);
      S.socket.disconnect();
    }
    if (peer) peer.close();
    peer = null;
    media.stop();
    for (const id of ["preview", "lobby-preview", "self-video"]) $(id).srcObject = null;
    for (const v of document.querySelectorAll("#grid video, #audio-sinks audio")) v.srcObject = null;
    S.socketState = "closed";
  }

  function leave() {
    send({ type: "leave" });
    finish("left", "");
  }

  // ----------------------------------------------------------------- wiring
  function wire() {
    const select = $("lang-select");
    for (const code of I18N.LANGUAGES) select.add(new Option(I18N.NATIVE_NAMES[code], code));
    select.addEventListener("change", () => setLanguage(select.value, true));

    $("join-btn").addEventListener("click", connect);
    $("lobby-leave").addEventListener("click", leave);
    $("btn-leave").addEventListener("click", leave);
    $("btn-end").addEventListener("click", () => {
      $("end-confirm").hidden = false;
      $("end-no").focus();
    });
    $("end-no").addEventListener("click", () => {
      $("end-confirm").hidden = true;
      $("btn-end").focus();
    });
    $("end-yes").addEventListener("click", () => {
      $("end-confirm").hidden = true;
      send({ type: "end" });
    });
    $("sound-blocked").addEventListener("click", () => {
      for (const a of document.querySelectorAll("#audio-sinks audio")) a.play().catch(() => {});
      media.audioContext();
      $("sound-blocked").hidden = true;
    });
    $("rejoin-btn").addEventListener("click", () => window.location.reload());
    $("error-retry").addEventListener("click", () => window.location.reload());
    // Browsers start audio only after a gesture: resume on the first one (meter, chime).
    document.addEventListener("pointerdown", () => media.stream && media.audioContext(), { capture: true });
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && !$("end-confirm").hidden) $("end-no").click();
    });
    window.addEventListener("pagehide", () => {
      if (S.screen === "call" || S.screen === "lobby") send({ type: "leave" });
    });
  }

  S.stats = stats;
  S.linkDetails = () => link.details();
  S.interpretationLevels = () => (interp ? interp.levels() : {});
  S.send = send;
  S.t = t;

  function main() {
    wire();
    if (window.SB_Recording) recording = window.SB_Recording.attach({ state: S, send, t, toast, canModerate, log });
    const [lang, chosen] = pickLanguage(tokenClaims().lang);
    S.langChosen = chosen;
    setLanguage(lang, false);
    loadJoinInfo().catch((e) => showError("unknown", String(e)));
  }

  main();
})();

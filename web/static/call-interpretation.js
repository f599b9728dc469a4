/* Seoulbridge call page: simultaneous interpretation, mixed in this browser.
 *
 * The server forwards every track unchanged and says, in "interpretation"
 * messages (signaling/PROTOCOL.md), each interpreter's mode and, in channel mode,
 * the language they speak into and its audience (the listeners of that language).
 * This file:
 *   - for the interpreter: the mode switch (consecutive, or a channel into one of
 *     the room's language groups), sent as "interpretation_mode";
 *   - for a listener in an audience: the choice "interpretation" (the interpreter at
 *     full volume, everyone else ducked to DUCK, not muted) or "original";
 *   - for everyone else: the interpreter is not heard while on a channel (their
 *     voice goes to the other language's listeners), and a line says so;
 *   - the mix itself, with Web Audio: each remote participant's track -> a GainNode
 *     -> an AnalyserNode -> the speakers. While no channel is on, the page's own
 *     <audio> elements play as before and nothing is mixed here.
 *
 * Plain script: defines window.SB_Interpretation. call.js calls
 * SB_Interpretation.attach({state, send, audioContext, log}) once and gets
 * {handle(msg), setRemote(tracks), render(), levels(), gains()}. levels() is each
 * remote participant's level after the mix (RMS 0..1, Web Audio analysers): what
 * this person hears of them. State for tests: state.interpretation, state.listenChoice.
 */
(function () {
  "use strict";

  const DUCK = 0.2; // the original under an interpretation: heard, not muted
  const CHOICE_KEY = "seoulbridge.listen";
  const STRINGS = {
    ko: {
      mode: "통역 방식", consecutive: "순차 통역 (전체에게)", channel: "동시 통역 → {lang}",
      listen: "듣기", original: "원래 음성", interpretation: "통역 음성",
      you_interpret: "지금 {lang} 청취자에게만 들립니다. 다른 참여자의 음성은 그대로 들립니다.",
      audience: "{name} 님이 {lang}(으)로 동시 통역 중입니다.",
      elsewhere: "{name} 님이 {lang} 청취자를 위해 동시 통역 중입니다. 통역 음성은 들리지 않습니다.",
    },
    en: {
      mode: "Interpreting", consecutive: "Consecutive (to the room)", channel: "Channel → {lang}",
      listen: "Listen to", original: "Original", interpretation: "Interpretation",
      you_interpret: "Only the {lang} listeners hear you now. You hear everyone as usual.",
      audience: "{name} is interpreting into {lang}.",
      elsewhere: "{name} is interpreting into {lang} for its listeners; you do not hear the interpretation.",
    },
    ja: {
      mode: "通訳の方式", consecutive: "逐次通訳（全員に）", channel: "同時通訳 → {lang}",
      listen: "聞く音声", original: "元の音声", interpretation: "通訳音声",
      you_interpret: "いまは{lang}の聞き手にだけ聞こえています。他の参加者の声はそのまま聞こえます。",
      audience: "{name}さんが{lang}に同時通訳しています。",
      elsewhere: "{name}さんが{lang}の聞き手のために同時通訳しています。通訳音声は聞こえません。",
    },
    zh: {
      mode: "口译方式", consecutive: "交替传译（对所有人）", channel: "同声传译 → {lang}",
      listen: "收听", original: "原声", interpretation: "口译",
      you_interpret: "现在只有{lang}听众能听到您。您照常听到所有人。",
      audience: "{name}正在同声传译成{lang}。",
      elsewhere: "{name}正在为{lang}听众同声传译；您听不到口译。",
    },
    ru: {
      mode: "Перевод", consecutive: "Последовательный (для всех)", channel: "Канал → {lang}",
      listen: "Слушать", original: "Оригинал", interpretation: "Перевод",
      you_interpret: "Сейчас вас слышат только слушатели канала ({lang}). Всех остальных вы слышите как обычно.",
      audience: "{name} переводит синхронно ({lang}).",
      elsewhere: "{name} переводит синхронно для слушателей ({lang}); перевод вам не слышен.",
    },
  };

  function ensureStylesheet() {
    if (document.querySelector("link[data-interp-css]")) return;
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = "/static/call-interpretation.css";
    link.dataset.interpCss = "";
    document.head.appendChild(link);
  }

  function attach(opts) {
    ensureStylesheet();
    const S = opts.state;
    const { send } = opts;
    const log = opts.log || (() => {});
    const $ = (id) => document.getElementById(id);
    const nodes = {}; // participant id -> {track, source, gain, analyser, data}
    let bar = null;

    S.interpretation = null;
    S.listenChoice = loadChoice();

    function loadChoice() {
      try {
        const v = localStorage.getItem(CHOICE_KEY);
        if (v === "original" || v === "interpretation") return v;
      } catch {
        /* storage disabled */
      }
      return "interpretation";
    }

    function s() {
      return { ...STRINGS.en, ...(STRINGS[S.lang] || {}) };
    }

    function fill(template, vars) {
      return String(template).replace(/\{(\w+)\}/g, (_, k) => (vars[k] !== undefined ? vars[k] : ""));
    }

    function langName(code) {
      try {
        const name = new Intl.DisplayNames([S.lang], { type: "language" }).of(code);
        if (name && name !== code) return name;
      } catch {
        /* no Intl.DisplayNames */
      }
      return (window.SB_LANGUAGES.names || {})[code] || code;
    }

    function nameOf(pid) {
      const p = S.participants[pid];
      return p ? p.name : pid;
    }

    function myId() {
      return S.you ? S.you.id : null;
    }

    function activeChannels() {
      const st = S.interpretation;
      return st ? st.channels.filter((c) => c.mode === "channel" && c.interpreter_id !== myId()) : [];
    }

    function myChannel() {
      const st = S.interpretation;
      return st ? st.channels.find((c) => c.interpreter_id === myId()) || null : null;
    }

    /** What each remote participant should sound like here: participant id -> 0..1. */
    function gains() {
      const out = {};
      for (const pid of Object.keys(S.participants)) out[pid] = 1;
      const me = myId();
      const channels = activeChannels();
      const listening = channels.filter((c) => c.audience.includes(me));
      for (const c of channels) if (!c.audience.includes(me)) out[c.interpreter_id] = 0;
      if (listening.length) {
        const interpreters = new Set(listening.map((c) => c.interpreter_id));
        for (const pid of Object.keys(out)) {
          if (interpreters.has(pid)) out[pid] = S.listenChoice === "interpretation" ? 1 : 0;
          else if (out[pid] !== 0) out[pid] = S.listenChoice === "interpretation" ? DUCK : 1;
        }
      }
      return out;
    }

    function mixing() {
      return activeChannels().length > 0;
    }

    // --------------------------------------------------------------- Web Audio
    function ensureNode(pid, track) {
      const ctx = opts.audioContext();
      if (!ctx) return null;
      let n = nodes[pid];
      if (n && n.track === track) return n;
      if (n) dropNode(pid);
      const source = ctx.createMediaStreamSource(new MediaStream([track]));
      const pre = ctx.createAnalyser();
      const gain = ctx.createGain();
      const analyser = ctx.createAnalyser();
      pre.fftSize = analyser.fftSize = 2048;
      source.connect(pre);
      source.connect(gain);
      gain.connect(analyser);
      n = { track, source, pre, gain, analyser, data: new Float32Array(analyser.fftSize), connected: false };
      nodes[pid] = n;
      return n;
    }

    function dropNode(pid) {
      const n = nodes[pid];
      if (!n) return;
      try {
        n.source.disconnect();
        n.gain.disconnect();
      } catch {
        /* already */
      }
      delete nodes[pid];
    }

    /** The peer's remote tracks changed: participant id -> {audio, video}. */
    function setRemote(tracks) {
      for (const pid of Object.keys(nodes)) if (!tracks[pid] || !tracks[pid].audio) dropNode(pid);
      for (const [pid, media] of Object.entries(tracks)) if (media.audio) ensureNode(pid, media.audio);
      apply();
    }

    function apply() {
      const ctx = opts.audioContext();
      const g = gains();
      const on = mixing();
      for (const [pid, n] of Object.entries(nodes)) {
        const target = g[pid] !== undefined ? g[pid] : 1;
        if (ctx) n.gain.gain.setTargetAtTime(target, ctx.currentTime, 0.05);
        if (on && !n.connected && ctx) {
          n.gain.connect(ctx.destination);
          n.connected = true;
        } else if (!on && n.connected) {
          n.gain.disconnect();
          n.gain.connect(n.analyser);
          n.connected = false;
        }
      }
      // while mixing here, the <audio> elements only keep the remote streams flowing
      for (const a of document.querySelectorAll("#audio-sinks audio")) a.muted = on;
      S.interpretationGains = g;
      S.interpretationMixing = on;
    }

    function rms(analyser, data) {
      analyser.getFloatTimeDomainData(data);
      let sum = 0;
      for (let i = 0; i < data.length; i++) sum += data[i] * data[i];
      return Math.sqrt(sum / data.length);
    }

    /** What this person hears of each remote participant now (after the mix) and before it. */
    function levels() {
      const out = {};
      for (const [pid, n] of Object.entries(nodes)) {
        out[pid] = { heard: rms(n.analyser, n.data), received: rms(n.pre, n.data), gain: n.gain.gain.value };
      }
      return out;
    }

    // -------------------------------------------------------------------- UI
    function ensureBar() {
      if (bar) return bar;
      const captions = $("captions");
      if (!captions) return null;
      bar = document.createElement("section");
      bar.id = "interp-bar";
      bar.className = "interp-bar";
      bar.setAttribute("aria-live", "polite");
      captions.parentElement.insertBefore(bar, captions);
      return bar;
    }

    function button(text, pressed, onClick, data) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "interp-btn";
      b.textContent = text;
      b.setAttribute("aria-pressed", String(pressed));
      for (const [k, v] of Object.entries(data || {})) b.dataset[k] = v;
      b.addEventListener("click", onClick);
      return b;
    }

    function render() {
      const box = ensureBar();
      if (!box) return;
      const st = S.interpretation;
      const t = s();
      box.textContent = "";
      const mine = myChannel();
      const me = myId();
      if (mine) {
        const groups = (st.languages || []).filter((l) => l);
        const head = document.createElement("span");
        head.className = "interp-label";
        head.textContent = t.mode;
        const group = document.createElement("div");
        group.className = "interp-group";
        group.setAttribute("role", "group");
        group.setAttribute("aria-label", t.mode);
        group.append(
          button(t.consecutive, mine.mode === "consecutive", () => send({ type: "interpretation_mode", mode: "consecutive" }), { mode: "consecutive" }),
        );
        for (const lang of groups) {
          group.append(
            button(fill(t.channel, { lang: langName(lang) }), mine.mode === "channel" && mine.into === lang, () => send({ type: "interpretation_mode", mode: "channel", into: lang }), { mode: "channel", into: lang }),
          );
        }
        box.append(head, group);
        if (mine.mode === "channel") {
          const p = document.createElement("p");
          p.className = "interp-note";
          p.textContent = fill(t.you_interpret, { lang: langName(mine.into) });
          box.append(p);
        }
        box.hidden = false;
        return;
      }
      const channels = activeChannels();
      if (!channels.length) {
        box.hidden = true;
        return;
      }
      for (const c of channels) {
        const p = document.createElement("p");
        p.className = "interp-note";
        const listening = c.audience.includes(me);
        p.textContent = fill(listening ? t.audience : t.elsewhere, { name: nameOf(c.interpreter_id), lang: langName(c.into) });
        box.append(p);
      }
      if (channels.some((c) => c.audience.includes(me))) {
        const head = document.createElement("span");
        head.className = "interp-label";
        head.textContent = t.listen;
        const group = document.createElement("div");
        group.className = "interp-group";
        group.setAttribute("role", "group");
        group.setAttribute("aria-label", t.listen);
        for (const choice of ["original", "interpretation"]) {
          group.append(button(t[choice], S.listenChoice === choice, () => choose(choice), { listen: choice }));
        }
        box.append(head, group);
      }
      box.hidden = false;
    }

    function choose(choice) {
      S.listenChoice = choice;
      try {
        localStorage.setItem(CHOICE_KEY, choice);
      } catch {
        /* ignore */
      }
      apply();
      render();
    }

    function handle(msg) {
      if (!msg || msg.type !== "interpretation") return;
      S.interpretation = msg;
      log("interpretation", msg.channels.map((c) => `${c.interpreter_id}:${c.mode}${c.into ? ">" + c.into : ""}`).join(","));
      apply();
      render();
    }

    return { handle, setRemote, render, levels, gains, choose, DUCK };
  }

  window.SB_Interpretation = Object.freeze({ attach, DUCK });
})();

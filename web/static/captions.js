/* Seoulbridge live captions: a small self-contained component.
 *
 *   Captions.mount(containerElement, {lang, you, participants, send, roleName})
 *   Captions.handle(message)      // "caption" and "caption_status" from the socket
 *   Captions.setLanguage(lang)    // the page's UI language changed
 *   Captions.setCaptionLanguage(lang)  // what the picker calls; sends caption_language
 *   Captions.setParticipants(map) // id -> Participant, when people come and go
 *
 * Shows a large live area (the speaker, with their role, and what they say in your
 * caption language), a scrollable history of finals, and honest notes: whose speech
 * this server cannot caption, which translations are not installed. A final's
 * translation is "pending" until the server settles it (translated, or untranslated
 * with a reason, within caption_status.translation_bound_s): the page then says
 * why it shows the original, and never shows "translating…" forever.
 *
 * Bilingual: with "show the original too" on, a translated line shows the original
 * above it, smaller. Text size: three steps, remembered on this device. Screen
 * readers: the live area is not a live region (partials would repeat); each final
 * is announced once, politely, when it is settled, in a visually hidden log.
 *
 * The caption language is separate from the spoken and UI languages and can change
 * mid-call; until you pick one it follows the UI language. See signaling/PROTOCOL.md
 * "Captions". Plain script, no build step; state for tests is on window.Captions.state.
 */
(function () {
  "use strict";

  const LANGS = window.SB_LANGUAGES.codes; // from /languages.js (kernel/languages.py)
  const LANG_NAMES = window.SB_LANGUAGES.names;
  const STRINGS = {
    ko: {
      title: "실시간 자막", language: "자막 언어", history: "자막 기록", waiting: "말하면 자막이 여기에 나타납니다.",
      translating: "번역 중…", bilingual: "원문도 함께 보기", size: "글자 크기", size_s: "작게", size_m: "보통", size_l: "크게",
      interpretation: "통역", you: "나",
      not_installed: "{target} 번역이 설치되어 있지 않아 {source} 원문을 보여 드립니다",
      failed: "{target} 번역에 실패해 {source} 원문을 보여 드립니다",
      timed_out: "{target} 번역이 너무 오래 걸려 {source} 원문을 보여 드립니다",
      lost: "{target} 번역이 도착하지 않아 {source} 원문을 보여 드립니다",
      not_translated: "{target}(으)로 번역되지 않아 {source} 원문을 보여 드립니다",
      no_model: "이 서버에는 {lang} 음성 인식이 없어 {name} 님의 말은 실시간 자막이 나오지 않습니다.",
      no_model_speaking: "{name} 님이 {lang}(으)로 말하고 있습니다. 이 서버에는 {lang} 음성 인식이 없어 자막이 나오지 않습니다.",
      speaker_failed: "{name} 님의 실시간 자막이 중단되었습니다.",
      route_none: "{source}에서 {target}(으)로의 번역이 설치되어 있지 않습니다. {source} 원문이 표시됩니다.",
    },
    en: {
      title: "Live captions", language: "Caption language", history: "Caption history", waiting: "Captions appear here when someone speaks.",
      translating: "Translating…", bilingual: "Show the original too", size: "Text size", size_s: "Small", size_m: "Medium", size_l: "Large",
      interpretation: "Interpretation", you: "you",
      not_installed: "Translation into {target} is not installed — showing {source}",
      failed: "Translation into {target} failed — showing {source}",
      timed_out: "Translation into {target} took too long — showing {source}",
      lost: "The {target} translation did not arrive — showing {source}",
      not_translated: "Not translated into {target} — showing {source}",
      no_model: "No live captions for {lang} speech on this server: {name} is not captioned.",
      no_model_speaking: "{name} is speaking {lang} — this server has no live captions for {lang} speech.",
      speaker_failed: "Live captions for {name} stopped.",
      route_none: "Translation from {source} into {target} is not installed: you see the {source} original.",
    },
    ja: {
      title: "ライブ字幕", language: "字幕の言語", history: "字幕の履歴", waiting: "話すとここに字幕が表示されます。",
      translating: "翻訳中…", bilingual: "原文も表示", size: "文字の大きさ", size_s: "小", size_m: "中", size_l: "大",
      interpretation: "通訳", you: "自分",
      not_installed: "{target}への翻訳はインストールされていません — {source}の原文を表示しています",
      failed: "{target}への翻訳に失敗しました — {source}の原文を表示しています",
      timed_out: "{target}への翻訳に時間がかかりすぎました — {source}の原文を表示しています",
      lost: "{target}の翻訳が届きませんでした — {source}の原文を表示しています",
      not_translated: "{target}に翻訳されていません — {source}の原文を表示しています",
      no_model: "このサーバーには{lang}の音声認識がないため、{name}さんの発言にはライブ字幕が出ません。",
      no_model_speaking: "{name}さんが{lang}で話しています — このサーバーには{lang}の音声認識がないため字幕は出ません。",
      speaker_failed: "{name}さんのライブ字幕が停止しました。",
      route_none: "{source}から{target}への翻訳はインストールされていません。{source}の原文が表示されます。",
    },
    zh: {
      title: "实时字幕", language: "字幕语言", history: "字幕记录", waiting: "有人说话时字幕会显示在这里。",
      translating: "翻译中…", bilingual: "同时显示原文", size: "字号", size_s: "小", size_m: "中", size_l: "大",
      interpretation: "口译", you: "我",
      not_installed: "未安装{target}翻译 — 显示{source}原文",
      failed: "{target}翻译失败 — 显示{source}原文",
      timed_out: "{target}翻译耗时过长 — 显示{source}原文",
      lost: "{target}翻译未送达 — 显示{source}原文",
      not_translated: "未翻译成{target} — 显示{source}原文",
      no_model: "本服务器没有{lang}语音识别：{name}的发言没有实时字幕。",
      no_model_speaking: "{name}正在说{lang} — 本服务器没有{lang}语音识别，不会出现字幕。",
      speaker_failed: "{name}的实时字幕已停止。",
      route_none: "未安装从{source}到{target}的翻译：您看到的是{source}原文。",
    },
    ru: {
      title: "Субтитры", language: "Язык субтитров", history: "История субтитров", waiting: "Субтитры появятся, когда кто-то заговорит.",
      translating: "Перевод…", bilingual: "Показывать и оригинал", size: "Размер текста", size_s: "Мелкий", size_m: "Средний", size_l: "Крупный",
      interpretation: "Устный перевод", you: "вы",
      not_installed: "Перевод на {target} не установлен — показан оригинал ({source})",
      failed: "Перевод на {target} не удался — показан оригинал ({source})",
      timed_out: "Перевод на {target} занял слишком много времени — показан оригинал ({source})",
      lost: "Перевод на {target} не пришёл — показан оригинал ({source})",
      not_translated: "Не переведено на {target} — показан оригинал ({source})",
      no_model: "На этом сервере нет распознавания речи ({lang}): для {name} субтитров нет.",
      no_model_speaking: "{name} говорит ({lang}) — на этом сервере нет субтитров для этой речи.",
      speaker_failed: "Субтитры для {name} остановлены.",
      route_none: "Перевод ({source} → {target}) не установлен: вы видите оригинал.",
    },
  };
  const ROLE_FALLBACK = { resident: "Resident", counselor: "Counselor", interpreter: "Interpreter", admin: "Administrator", observer: "Observer" };
  const HISTORY_MAX = 500;
  const PICK_KEY = "seoulbridge.captionLang";
  const SIZE_KEY = "seoulbridge.captionSize";
  const BILINGUAL_KEY = "seoulbridge.captionBilingual";
  const SIZES = ["s", "m", "l"];
  const SPEAKING_LEVEL = 0.04; // getStats audioLevel above which someone is audibly talking
  const GRACE_S = 3; // on top of the server's bound, before a pending translation counts as lost

  const state = {
    mounted: false,
    uiLang: "en",
    captionLang: null, // null: follow the UI language
    bilingual: true,
    size: "m",
    received: [], // every caption message, for tests
    current: null, // the caption on the big live area
    history: [], // final captions by id, in order
    status: null, // the latest caption_status
    announced: [], // ids of finals announced to screen readers, in order
    arrivedAt: {}, // caption id -> performance.now() when its first final arrived
  };
  let root = null;
  let els = {};
  let opts = {};
  let participants = {};
  let timer = null;

  function strings() {
    const base = STRINGS[state.uiLang] || STRINGS.en;
    const extra = (opts.strings && opts.strings[state.uiLang]) || {};
    return { ...STRINGS.en, ...base, ...extra };
  }

  function fill(template, vars) {
    return String(template).replace(/\{(\w+)\}/g, (_, k) => (vars[k] !== undefined ? vars[k] : ""));
  }

  /** A language's name in the UI language ("일본어", "Japanese"), for sentences. */
  function langName(code) {
    try {
      const name = new Intl.DisplayNames([state.uiLang], { type: "language" }).of(code);
      if (name && name !== code) return name;
    } catch {
      /* no Intl.DisplayNames */
    }
    return LANG_NAMES[code] || code;
  }

  function captionLang() {
    return state.captionLang || state.uiLang;
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function load(key, allowed, fallback) {
    try {
      const v = localStorage.getItem(key);
      if (allowed.includes(v)) return v;
    } catch {
      /* storage disabled */
    }
    return fallback;
  }

  function save(key, value) {
    try {
      localStorage.setItem(key, value);
    } catch {
      /* ignore */
    }
  }

  function ensureStylesheet() {
    if (document.querySelector("link[data-captions-css]")) return;
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = "/static/captions.css";
    link.dataset.captionsCss = "";
    document.head.appendChild(link);
  }

  function build() {
    root.textContent = "";
    root.classList.add("cc");
    const head = el("div", "cc-head");
    els.title = el("h2", "cc-title");
    const label = el("label", "cc-lang");
    els.langLabel = el("span");
    els.picker = el("select", "cc-picker");
    els.picker.id = "caption-language";
    for (const code of LANGS) {
      const o = el("option", null, LANG_NAMES[code]);
      o.value = code;
      els.picker.appendChild(o);
    }
    els.picker.addEventListener("change", () => setCaptionLanguage(els.picker.value, true));
    label.append(els.langLabel, els.picker);

    const sizeLabel = el("label", "cc-lang cc-size-pick");
    els.sizeLabel = el("span");
    els.size = el("select", "cc-picker");
    els.size.id = "caption-size";
    for (const code of SIZES) {
      const o = el("option");
      o.value = code;
      els.size.appendChild(o);
    }
    els.size.addEventListener("change", () => setSize(els.size.value));
    sizeLabel.append(els.sizeLabel, els.size);

    const bi = el("label", "cc-check");
    els.bilingual = el("input");
    els.bilingual.type = "checkbox";
    els.bilingual.id = "caption-bilingual";
    els.bilingual.addEventListener("change", () => setBilingual(els.bilingual.checked));
    els.bilingualText = el("span");
    bi.append(els.bilingual, els.bilingualText);

    els.historyToggle = el("button", "cc-history-toggle");
    els.historyToggle.type = "button";
    els.historyToggle.setAttribute("aria-expanded", "true");
    els.historyToggle.addEventListener("click", () => {
      const open = els.history.hidden;
      els.history.hidden = !open;
      els.historyToggle.setAttribute("aria-expanded", String(open));
    });
    head.append(els.title, label, sizeLabel, bi, els.historyToggle);

    // A list that is also a polite live region (role=status would hide its list items).
    els.notes = el("ul", "cc-notes");
    els.notes.setAttribute("aria-live", "polite");

    // What is seen: not a live region (partials would be read again and again).
    const live = el("div", "cc-live");
    els.live = live;
    els.speaker = el("p", "cc-speaker-line");
    els.source = el("p", "cc-line cc-source");
    els.main = el("p", "cc-line cc-main");
    els.note = el("p", "cc-note");
    live.append(els.speaker, els.source, els.main, els.note);

    // What is heard: each final once, when it is settled.
    els.announce = el("div", "cc-sr");
    els.announce.setAttribute("role", "log");
    els.announce.setAttribute("aria-live", "polite");
    els.announce.setAttribute("aria-relevant", "additions");
    els.announce.id = "caption-announcements";

    els.history = el("ol", "cc-history");
    els.history.setAttribute("tabindex", "0");
    root.append(head, els.notes, live, els.announce, els.history);
  }

  function applyStrings() {
    if (!root) return;
    const s = strings();
    els.title.textContent = s.title;
    els.langLabel.textContent = s.language;
    els.sizeLabel.textContent = s.size;
    for (const o of els.size.options) o.textContent = s[`size_${o.value}`];
    els.bilingualText.textContent = s.bilingual;
    els.historyToggle.textContent = s.history;
    els.history.setAttribute("aria-label", s.history);
    els.announce.setAttribute("aria-label", s.title);
    els.picker.value = captionLang();
    els.size.value = state.size;
    els.bilingual.checked = state.bilingual;
    for (const size of SIZES) root.classList.toggle(`cc-size-${size}`, state.size === size);
    root.dataset.bilingual = state.bilingual ? "1" : "0";
    renderNotes();
    renderLive();
  }

  // --------------------------------------------------------------- speakers
  function roleName(role) {
    if (typeof opts.roleName === "function") {
      const name = opts.roleName(role);
      if (name && name !== `role_${role}`) return name;
    }
    return ROLE_FALLBACK[role] || role || "";
  }

  function nameOf(pid, fallback) {
    if (opts.you && pid === opts.you.id) return `${opts.you.name} (${strings().you})`;
    const p = participants[pid];
    return (p && p.name) || fallback || pid || "";
  }

  function speakerLabel(msg) {
    const name = msg.speaker_name || nameOf(msg.speaker_id);
    const role = msg.speaker_role ? roleName(msg.speaker_role) : "";
    return role ? `${name} · ${role}` : name;
  }

  // ------------------------------------------------------------ translation
  /**
   * What a caption is in your caption language:
   *   {kind: "same"}                     it is in your language
   *   {kind: "translated", text}
   *   {kind: "pending"}                  being translated, within the server's bound
   *   {kind: "missing", reason}          not_installed | failed | timed_out | lost | not_translated
   */
  function translationFor(msg) {
    const lang = captionLang();
    if (msg.language === lang) return { kind: "same" };
    const tr = msg.translations && msg.translations[lang];
    if (typeof tr === "string" && tr) return { kind: "translated", text: tr };
    const why = msg.untranslated && msg.untranslated[lang];
    if (why) return { kind: "missing", reason: why };
    if (routeFor(msg.language, lang) === "none") return { kind: "missing", reason: "not_installed" };
    if (!msg.final) return { kind: "partial" };
    if ((msg.pending || []).includes(lang)) {
      const since = state.arrivedAt[msg.id];
      const bound = ((state.status && state.status.translation_bound_s) || 15) + GRACE_S;
      if (since !== undefined && (performance.now() - since) / 1000 > bound) return { kind: "missing", reason: "lost" };
      return { kind: "pending" };
    }
    return { kind: "missing", reason: "not_translated" };
  }

  function routeFor(source, target) {
    const routes = (state.status && state.status.routes) || [];
    const r = routes.find((x) => x.source === source && x.target === target);
    return r ? r.route : null;
  }

  function missingText(reason, msg) {
    const s = strings();
    return fill(s[reason] || s.not_translated, { target: langName(captionLang()), source: langName(msg.language) });
  }

  // ------------------------------------------------------------------ notes
  function renderNotes() {
    if (!root) return;
    const s = strings();
    const notes = [];
    const st = state.status;
    if (st) {
      for (const sp of st.speakers || []) {
        const name = nameOf(sp.participant_id);
        if (sp.state === "no_model") notes.push({ kind: "no_model", pid: sp.participant_id, text: fill(s.no_model, { lang: langName(sp.language), name }) });
        else if (sp.state === "failed") notes.push({ kind: "speaker_failed", pid: sp.participant_id, text: fill(s.speaker_failed, { name }) });
      }
      const lang = captionLang();
      for (const r of st.routes || []) {
        if (r.target === lang && r.route === "none") {
          notes.push({ kind: "route_none", text: fill(s.route_none, { source: langName(r.source), target: langName(r.target) }) });
        }
      }
    }
    const key = JSON.stringify(notes.map((n) => n.text));
    if (els.notes.dataset.key === key) return;
    els.notes.dataset.key = key;
    els.notes.textContent = "";
    for (const n of notes) {
      const li = el("li", `cc-notice cc-notice-${n.kind}`, n.text);
      li.dataset.kind = n.kind;
      if (n.pid) li.dataset.pid = n.pid;
      els.notes.appendChild(li);
    }
    els.notes.hidden = notes.length === 0;
  }

  /** Someone whose speech has no model is audibly talking now (from the page's stats). */
  function uncaptionedSpeaker() {
    const st = state.status;
    const stats = window.seoulbridge && window.seoulbridge.lastStats;
    if (!st || !stats) return null;
    for (const sp of st.speakers || []) {
      if (sp.state !== "no_model") continue;
      const s = stats[sp.participant_id];
      const p = participants[sp.participant_id];
      if (s && s.audioLevel > SPEAKING_LEVEL && !(p && p.audio_muted)) return sp;
    }
    return null;
  }

  // ------------------------------------------------------------------- live
  function renderLive() {
    if (!root) return;
    const msg = state.current;
    const s = strings();
    for (const e of [els.speaker, els.source, els.main, els.note]) {
      e.textContent = "";
      e.className = e.className.split(" ").filter((c) => !c.startsWith("is-")).join(" ");
    }
    els.live.dataset.state = "";
    const silent = uncaptionedSpeaker();
    if (silent && (!msg || msg.final)) {
      els.live.dataset.state = "uncaptioned";
      els.main.classList.add("is-placeholder");
      els.main.textContent = fill(s.no_model_speaking, { name: nameOf(silent.participant_id), lang: langName(silent.language) });
      return;
    }
    if (!msg) {
      els.live.dataset.state = "waiting";
      els.main.classList.add("is-placeholder");
      els.main.textContent = s.waiting;
      return;
    }
    els.speaker.append(el("span", "cc-speaker", speakerLabel(msg)));
    if (msg.kind === "interpretation") els.speaker.append(el("span", "cc-tag", s.interpretation));
    const tr = translationFor(msg);
    els.live.dataset.state = tr.kind;
    els.source.lang = msg.language || "";
    els.main.lang = msg.language || "";
    if (!msg.final) els.main.classList.add("is-partial");
    if (tr.kind === "translated") {
      els.main.lang = captionLang();
      els.main.textContent = tr.text;
      if (state.bilingual) els.source.textContent = msg.text;
    } else {
      els.main.textContent = msg.text;
      if (tr.kind === "pending") {
        els.note.textContent = s.translating;
        els.note.classList.add("is-pending");
      } else if (tr.kind === "missing") {
        els.note.textContent = missingText(tr.reason, msg);
        els.note.classList.add("is-missing");
        els.note.dataset.reason = tr.reason;
      } else if (tr.kind === "partial") {
        // while a new sentence is being spoken, keep the last translation readable
        const last = lastTranslated(msg.speaker_id);
        if (last && state.bilingual) {
          els.note.textContent = last;
          els.note.classList.add("is-previous");
        }
      }
    }
  }

  function lastTranslated(speakerId) {
    for (let i = state.history.length - 1; i >= 0; i--) {
      const m = state.history[i];
      if (m.speaker_id !== speakerId) continue;
      const tr = translationFor(m);
      if (tr.kind === "translated") return tr.text;
    }
    return null;
  }

  // ---------------------------------------------------------------- history
  function historyItem(msg) {
    const li = el("li", "cc-item");
    li.dataset.id = msg.id;
    if (msg.kind === "interpretation") li.dataset.kind = "interpretation";
    const meta = el("div", "cc-meta");
    meta.append(el("strong", null, speakerLabel(msg)));
    if (msg.kind === "interpretation") meta.append(el("span", "cc-tag", strings().interpretation));
    meta.append(el("span", "cc-time", clock(msg.start)));
    const orig = el("p", "cc-item-original", msg.text);
    orig.lang = msg.language || "";
    li.append(meta, orig);
    const tr = translationFor(msg);
    if (tr.kind === "translated") {
      const p = el("p", "cc-item-translation", tr.text);
      p.lang = captionLang();
      li.appendChild(p);
    } else if (tr.kind === "pending") {
      li.appendChild(el("p", "cc-item-note is-pending", strings().translating));
    } else if (tr.kind === "missing") {
      const p = el("p", "cc-item-note is-missing", missingText(tr.reason, msg));
      p.dataset.reason = tr.reason;
      li.appendChild(p);
    }
    return li;
  }

  function clock(seconds) {
    const total = Math.max(0, Math.floor(seconds || 0));
    const m = Math.floor(total / 60);
    const sec = String(total % 60).padStart(2, "0");
    return `${m}:${sec}`;
  }

  function renderHistory() {
    if (!root) return;
    const list = els.history;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.textContent = "";
    for (const msg of state.history) list.appendChild(historyItem(msg));
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  function upsertHistory(msg) {
    const i = state.history.findIndex((m) => m.id === msg.id);
    if (i >= 0) state.history[i] = msg;
    else {
      state.history.push(msg);
      if (state.history.length > HISTORY_MAX) state.history.shift();
    }
  }

  // --------------------------------------------------------- screen readers
  /** Announce each final once, when nothing about it will change any more. */
  function announce(msg) {
    if (!msg.final || state.announced.includes(msg.id)) return;
    const tr = translationFor(msg);
    if (tr.kind === "pending") return; // its settled version comes within the bound
    state.announced.push(msg.id);
    if (state.announced.length > HISTORY_MAX) state.announced.shift();
    const text = tr.kind === "translated" ? tr.text : msg.text;
    const p = el("p", null, `${speakerLabel(msg)}: ${text}`);
    p.lang = tr.kind === "translated" ? captionLang() : msg.language || "";
    p.dataset.id = msg.id;
    els.announce.appendChild(p);
    while (els.announce.childElementCount > 5) els.announce.firstElementChild.remove();
  }

  // ---------------------------------------------------------------- messages
  function handle(msg) {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "caption_status") {
      state.status = msg;
      renderNotes();
      renderLive();
      renderHistory();
      return;
    }
    if (msg.type !== "caption" || typeof msg.text !== "string") return;
    state.received.push(msg);
    if (state.received.length > HISTORY_MAX * 4) state.received.splice(0, HISTORY_MAX);
    if (msg.final && state.arrivedAt[msg.id] === undefined) state.arrivedAt[msg.id] = performance.now();
    const cur = state.current;
    // a late translation of an older caption must not replace what is being said now
    if (!cur || cur.id === msg.id || cur.final || msg.final === false) state.current = msg;
    if (msg.final) {
      upsertHistory(msg);
      renderHistory();
      if (root) announce(msg);
    }
    renderLive();
  }

  /** Pending translations run out, uncaptioned speech starts and stops: look again. */
  function tick() {
    if (!root) return;
    const before = els.live.dataset.state;
    renderLive();
    const lost = state.history.some((m) => m.final && (m.pending || []).includes(captionLang()) && !m.translations[captionLang()]);
    if (lost) {
      renderHistory();
      for (const m of state.history) announce(m);
    }
    if (before !== els.live.dataset.state) renderNotes();
  }

  function sendLanguage() {
    if (typeof opts.send === "function") opts.send({ type: "caption_language", language: captionLang() });
  }

  function setCaptionLanguage(lang, picked) {
    if (!LANGS.includes(lang)) return;
    state.captionLang = lang;
    if (picked) save(PICK_KEY, lang);
    applyStrings();
    renderHistory();
    sendLanguage();
    if (typeof opts.onCaptionLanguage === "function") opts.onCaptionLanguage(lang);
  }

  function setSize(size) {
    if (!SIZES.includes(size)) return;
    state.size = size;
    save(SIZE_KEY, size);
    applyStrings();
  }

  function setBilingual(on) {
    state.bilingual = !!on;
    save(BILINGUAL_KEY, state.bilingual ? "1" : "0");
    applyStrings();
  }

  function setLanguage(lang) {
    if (!LANGS.includes(lang)) return;
    const followed = !state.captionLang;
    state.uiLang = lang;
    applyStrings();
    renderHistory();
    if (followed && state.mounted) sendLanguage();
  }

  function setParticipants(map) {
    participants = { ...(map || {}) };
    renderNotes();
  }

  function mount(container, options) {
    if (!container) return;
    opts = options || {};
    root = container;
    participants = { ...(opts.participants || {}) };
    ensureStylesheet();
    if (LANGS.includes(opts.lang)) state.uiLang = opts.lang;
    const saved = load(PICK_KEY, LANGS, null);
    if (saved) state.captionLang = saved;
    state.size = load(SIZE_KEY, SIZES, "m");
    state.bilingual = load(BILINGUAL_KEY, ["0", "1"], "1") === "1";
    build();
    state.mounted = true;
    applyStrings();
    renderHistory();
    sendLanguage();
    clearInterval(timer);
    timer = setInterval(tick, 500);
  }

  window.Captions = { mount, handle, setLanguage, setCaptionLanguage, setParticipants, setSize, setBilingual, state };
})();

/* Seoulbridge live captions: a small self-contained component.
 *
 *   Captions.mount(containerElement, {lang, you, participants, send, strings})
 *   Captions.handle(message)      // {type: "caption", ...} from socket.io event "message"
 *   Captions.setLanguage(lang)    // the page's UI language changed
 *   Captions.setCaptionLanguage(lang)  // what the picker calls; sends caption_language
 *
 * Shows a large two-line area (the speaker's words, and the translation in your
 * caption language) and a scrollable history of final captions. The caption
 * language is separate from the spoken and UI languages and can change mid-call;
 * until you pick one it follows the UI language. See signaling/PROTOCOL.md "Captions".
 * Plain script, no build step; state for tests is on window.Captions.state.
 */
(function () {
  "use strict";

  const LANGS = window.SB_LANGUAGES.codes; // from /languages.js (kernel/languages.py)
  const LANG_NAMES = window.SB_LANGUAGES.names;
  const STRINGS = {
    ko: { title: "실시간 자막", language: "자막 언어", history: "자막 기록", waiting: "말하면 자막이 여기에 나타납니다.", translating: "번역 중…", no_translation: "번역 없음" },
    en: { title: "Live captions", language: "Caption language", history: "Caption history", waiting: "Captions appear here when someone speaks.", translating: "Translating…", no_translation: "No translation" },
    ja: { title: "ライブ字幕", language: "字幕の言語", history: "字幕の履歴", waiting: "話すとここに字幕が表示されます。", translating: "翻訳中…", no_translation: "翻訳なし" },
    zh: { title: "实时字幕", language: "字幕语言", history: "字幕记录", waiting: "有人说话时字幕会显示在这里。", translating: "翻译中…", no_translation: "无翻译" },
    ru: { title: "Субтитры", language: "Язык субтитров", history: "История субтитров", waiting: "Субтитры появятся, когда кто-то заговорит.", translating: "Перевод…", no_translation: "Нет перевода" },
  };
  const HISTORY_MAX = 500;
  const PICK_KEY = "seoulbridge.captionLang";

  const state = {
    mounted: false,
    uiLang: "en",
    captionLang: null, // null: follow the UI language
    received: [], // every caption message, for tests
    current: null, // the caption on the big two-line area
    history: [], // final captions by id, in order
  };
  let root = null;
  let els = {};
  let opts = {};

  function strings() {
    const base = STRINGS[state.uiLang] || STRINGS.en;
    const extra = (opts.strings && opts.strings[state.uiLang]) || {};
    return { ...base, ...extra };
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

  function ensureStylesheet() {
    if (document.querySelector('link[data-captions-css]')) return;
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
    els.historyToggle = el("button", "cc-history-toggle");
    els.historyToggle.type = "button";
    els.historyToggle.setAttribute("aria-expanded", "true");
    els.historyToggle.addEventListener("click", () => {
      const open = els.history.hidden;
      els.history.hidden = !open;
      els.historyToggle.setAttribute("aria-expanded", String(open));
    });
    head.append(els.title, label, els.historyToggle);

    const live = el("div", "cc-live");
    live.setAttribute("role", "region");
    live.setAttribute("aria-live", "polite");
    els.original = el("p", "cc-line cc-original");
    els.translation = el("p", "cc-line cc-translation");
    els.original.lang = "";
    live.append(els.original, els.translation);

    els.history = el("ol", "cc-history");
    els.history.setAttribute("tabindex", "0");
    root.append(head, live, els.history);
  }

  function applyStrings() {
    if (!root) return;
    const s = strings();
    els.title.textContent = s.title;
    els.langLabel.textContent = s.language;
    els.historyToggle.textContent = s.history;
    els.history.setAttribute("aria-label", s.history);
    els.picker.value = captionLang();
    renderLive();
  }

  function speakerLabel(msg) {
    return msg.speaker_name || msg.speaker_id || "";
  }

  function translationFor(msg) {
    const lang = captionLang();
    if (msg.language === lang) return null; // the original is already in your language
    if (msg.translations && typeof msg.translations[lang] === "string") return msg.translations[lang];
    return undefined;
  }

  function renderLive() {
    if (!root) return;
    const msg = state.current;
    const s = strings();
    els.original.textContent = "";
    els.translation.textContent = "";
    if (!msg) {
      els.original.classList.add("cc-placeholder");
      els.original.textContent = s.waiting;
      return;
    }
    els.original.classList.remove("cc-placeholder");
    els.original.classList.toggle("cc-partial", !msg.final);
    els.original.lang = msg.language || "";
    els.original.append(el("span", "cc-speaker", speakerLabel(msg) + ": "), document.createTextNode(msg.text));
    const tr = translationFor(msg);
    const lang = captionLang();
    els.translation.lang = lang;
    els.translation.classList.remove("cc-pending", "cc-previous");
    if (tr === null) return;
    if (tr !== undefined) {
      els.translation.textContent = tr;
    } else if (msg.final) {
      els.translation.textContent = s.translating;
      els.translation.classList.add("cc-pending");
    } else {
      // while a new sentence is being spoken, keep the last translation readable
      const last = lastTranslated();
      if (last) {
        els.translation.textContent = last;
        els.translation.classList.add("cc-previous");
      }
    }
  }

  function lastTranslated() {
    for (let i = state.history.length - 1; i >= 0; i--) {
      const tr = translationFor(state.history[i]);
      if (tr) return tr;
    }
    return null;
  }

  function historyItem(msg) {
    const li = el("li", "cc-item");
    li.dataset.id = msg.id;
    const meta = el("div", "cc-meta");
    meta.append(el("strong", null, speakerLabel(msg)), el("span", "cc-time", clock(msg.start)));
    const orig = el("p", "cc-item-original", msg.text);
    orig.lang = msg.language || "";
    li.append(meta, orig);
    const tr = translationFor(msg);
    if (tr) {
      const p = el("p", "cc-item-translation", tr);
      p.lang = captionLang();
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

  function handle(msg) {
    if (!msg || msg.type !== "caption" || typeof msg.text !== "string") return;
    state.received.push(msg);
    if (state.received.length > HISTORY_MAX * 4) state.received.splice(0, HISTORY_MAX);
    const cur = state.current;
    // a late translation of an older caption must not replace what is being said now
    if (!cur || cur.id === msg.id || cur.final || msg.final === false) state.current = msg;
    if (msg.final) {
      upsertHistory(msg);
      renderHistory();
    }
    renderLive();
  }

  function sendLanguage() {
    if (typeof opts.send === "function") opts.send({ type: "caption_language", language: captionLang() });
  }

  function setCaptionLanguage(lang, picked) {
    if (!LANGS.includes(lang)) return;
    state.captionLang = lang;
    if (picked) {
      try {
        localStorage.setItem(PICK_KEY, lang);
      } catch {
        /* ignore */
      }
    }
    applyStrings();
    renderHistory();
    sendLanguage();
    if (typeof opts.onCaptionLanguage === "function") opts.onCaptionLanguage(lang);
  }

  function setLanguage(lang) {
    if (!LANGS.includes(lang)) return;
    const followed = !state.captionLang;
    state.uiLang = lang;
    applyStrings();
    if (followed && state.mounted) {
      renderHistory();
      sendLanguage();
    }
  }

  function mount(container, options) {
    if (!container) return;
    opts = options || {};
    root = container;
    ensureStylesheet();
    if (LANGS.includes(opts.lang)) state.uiLang = opts.lang;
    try {
      const saved = localStorage.getItem(PICK_KEY);
      if (LANGS.includes(saved)) state.captionLang = saved;
    } catch {
      /* ignore */
    }
    build();
    state.mounted = true;
    applyStrings();
    renderHistory();
    sendLanguage();
  }

  window.Captions = { mount, handle, setLanguage, setCaptionLanguage, state };
})();

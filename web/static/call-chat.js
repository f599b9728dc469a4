/* Seoulbridge call page: the chat panel.
 *
 * Shows `chat` messages (the page keeps the last 500 in state.chat), sends what is
 * typed as `chat`, and lets the panel be hidden with the Chat control, which then
 * counts unread messages from others. Shown by default on screens wider than 600px.
 *
 * Plain script: defines window.SB_Chat. call.js calls
 * SB_Chat.attach({state, send, t}) once and gets {handle, restore, render}: handle(msg)
 * for every `chat` message, restore(lines) with `joined.chat` (the room's chat so far,
 * kept by the server, so a reload or a reconnect shows it again), render() after its
 * own renders (the Chat control, and the timestamps, which follow the language).
 */
(function () {
  "use strict";

  const KEPT = 500;

  function attach(opts) {
    const S = opts.state;
    const { send, t } = opts;
    const $ = (id) => document.getElementById(id);
    let visible = window.matchMedia("(min-width: 37.51em)").matches;
    let unread = 0;

    function handle(msg) {
      S.chat.push(msg);
      if (S.chat.length > KEPT) S.chat.shift();
      append(msg);
      if (!visible && msg.participant_id !== (S.you && S.you.id)) {
        unread += 1;
        renderToggle();
      }
    }

    /** The room's chat so far replaces what this page holds (no doubles on a reconnect). */
    function restore(lines) {
      S.chat = lines.slice(-KEPT);
      $("chat-log").textContent = "";
      for (const msg of S.chat) append(msg);
      $("chat-empty").hidden = S.chat.length > 0;
    }

    function append(msg) {
      const log_ = $("chat-log");
      const li = document.createElement("li");
      if (S.you && msg.participant_id === S.you.id) li.classList.add("mine");
      const meta = document.createElement("div");
      meta.className = "chat-meta";
      const name = document.createElement("strong");
      name.textContent = msg.name;
      const time = document.createElement("time");
      const when = new Date((msg.ts || Date.now() / 1000) * 1000);
      time.dateTime = when.toISOString();
      time.textContent = when.toLocaleTimeString(S.lang, { hour: "2-digit", minute: "2-digit" });
      meta.append(name, time);
      const text = document.createElement("div");
      text.className = "chat-text";
      text.textContent = msg.text;
      li.append(meta, text);
      log_.append(li);
      $("chat-empty").hidden = true;
      log_.scrollTop = log_.scrollHeight;
    }

    function renderToggle() {
      $("chat-panel").hidden = !visible;
      const btn = $("btn-chat");
      btn.setAttribute("aria-expanded", String(visible));
      btn.setAttribute("aria-label", t(visible ? "chat_hide" : "chat_show"));
      btn.title = btn.getAttribute("aria-label");
      const badge = $("chat-unread");
      badge.hidden = unread === 0;
      badge.textContent = String(unread);
    }

    function render() {
      renderToggle();
      // Chat timestamps follow the language.
      const items = $("chat-log").children;
      S.chat.forEach((m, i) => {
        const time = items[i] && items[i].querySelector("time");
        if (time) time.textContent = new Date(m.ts * 1000).toLocaleTimeString(S.lang, { hour: "2-digit", minute: "2-digit" });
      });
    }

    $("btn-chat").addEventListener("click", () => {
      visible = !visible;
      if (visible) unread = 0;
      renderToggle();
      if (visible) $("chat-input").focus();
    });
    $("chat-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const input = $("chat-input");
      const text = input.value.trim();
      if (!text) return;
      if (send({ type: "chat", text: text.slice(0, 2000) })) input.value = "";
    });

    return { handle, restore, render };
  }

  window.SB_Chat = Object.freeze({ attach });
})();

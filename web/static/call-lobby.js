/* Seoulbridge call page: the waiting room, as counselors and admins see it.
 *
 * The "Waiting room" panel beside the call (one line per waiting person with
 * Admit / Deny, sent as admit / deny) and the knock: a chime and a banner over the
 * stage for 15 s when someone arrives in the lobby.
 *
 * Plain script: defines window.SB_Lobby. call.js calls
 * SB_Lobby.attach({state, send, t, roleName, canModerate, chime}) once and gets
 * {render, knock}: render() after the waiting list (state.waiting) changed,
 * knock(participant) for a `knock` message. The list lives on the page state
 * (window.seoulbridge.waiting).
 */
(function () {
  "use strict";

  const BANNER_MS = 15000;

  function attach(opts) {
    const S = opts.state;
    const { send, t, roleName, canModerate, chime } = opts;
    const $ = (id) => document.getElementById(id);
    let bannerTimer = null;

    function render() {
      const panel = $("lobby-panel");
      panel.hidden = !canModerate();
      if (!canModerate()) return;
      const list = $("lobby-list");
      list.textContent = "";
      $("lobby-empty").hidden = S.waiting.length > 0;
      const count = $("lobby-count");
      count.hidden = S.waiting.length === 0;
      count.textContent = String(S.waiting.length);
      if (!S.waiting.length) $("knock-banner").hidden = true;
      for (const p of S.waiting) {
        const li = document.createElement("li");
        li.dataset.pid = p.id;
        const who = document.createElement("div");
        who.className = "who-line";
        who.textContent = p.name;
        const lang = document.createElement("span");
        lang.className = "lang-tag";
        lang.textContent = `${roleName(p.role)} · ${window.SB_I18N.NATIVE_NAMES[p.language] || p.language}`;
        who.append(lang);
        const actions = document.createElement("div");
        actions.className = "actions";
        const admit = document.createElement("button");
        admit.type = "button";
        admit.className = "btn btn-primary btn-small admit";
        admit.textContent = t("admit");
        admit.setAttribute("aria-label", t("admit_label", { name: p.name }));
        admit.addEventListener("click", () => send({ type: "admit", participant_id: p.id }));
        const deny = document.createElement("button");
        deny.type = "button";
        deny.className = "btn btn-secondary btn-small deny";
        deny.textContent = t("deny");
        deny.setAttribute("aria-label", t("deny_label", { name: p.name }));
        deny.addEventListener("click", () => send({ type: "deny", participant_id: p.id, reason: "" }));
        actions.append(admit, deny);
        li.append(who, actions);
        list.append(li);
      }
    }

    function knock(participant) {
      chime();
      const banner = $("knock-banner");
      banner.textContent = t("knock", { name: participant.name });
      banner.hidden = false;
      clearTimeout(bannerTimer);
      bannerTimer = setTimeout(() => {
        banner.hidden = true;
      }, BANNER_MS);
      if (!S.waiting.some((p) => p.id === participant.id)) {
        S.waiting = [...S.waiting, participant];
        render();
      }
    }

    return { render, knock };
  }

  window.SB_Lobby = Object.freeze({ attach });
})();

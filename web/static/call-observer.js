/* Seoulbridge call page: observers, whom nobody can miss.
 *
 * An observer (role "observer") receives audio, video and captions and publishes
 * nothing: the server gives their connection nothing to publish (signaling/PROTOCOL.md
 * "Observers"). Here:
 *   - the observer's own device check asks for no camera or microphone and says why;
 *   - on the call screen everyone sees a banner naming every observer present (the
 *     observer too, about themselves), besides their tile with the "observer" role.
 *
 * Plain script: defines window.SB_Observer. call.js calls
 * SB_Observer.attach({state, t}) once and gets {isObserver(), prepareCheck(), render()}.
 */
(function () {
  "use strict";

  const STRINGS = {
    ko: {
      check: "참관인으로 참여합니다. 상담을 보고 들을 수 있지만, 카메라와 마이크는 사용하지 않으며 다른 참여자에게 ‘참관인’으로 표시됩니다.",
      join: "참관인으로 참여하기",
      present: "참관 중: {names}. 참관인은 상담을 보고 듣지만 말하거나 화면에 나오지 않습니다.",
      you: "참관인으로 참여 중입니다. 모든 참여자에게 ‘참관인’으로 표시되며, 내 모습과 목소리는 전달되지 않습니다.",
    },
    en: {
      check: "You join as an observer: you see and hear the consultation, your camera and microphone are not used, and everyone sees you listed as an observer.",
      join: "Join as observer",
      present: "Observing: {names}. Observers see and hear the consultation; they are not seen or heard.",
      you: "You are observing. Everyone sees you listed as an observer; your picture and voice are not sent.",
    },
    ja: {
      check: "オブザーバーとして参加します。相談を見聞きできますが、カメラとマイクは使わず、全員に「オブザーバー」と表示されます。",
      join: "オブザーバーとして参加",
      present: "オブザーバー：{names}。オブザーバーは相談を見聞きしますが、映像や音声は送りません。",
      you: "オブザーバーとして参加中です。全員に「オブザーバー」と表示され、あなたの映像と音声は送られません。",
    },
    zh: {
      check: "您将以旁听者身份加入：可以看到和听到咨询，不使用摄像头和麦克风，所有人都会看到您是旁听者。",
      join: "以旁听者身份加入",
      present: "旁听者：{names}。旁听者可以看到和听到咨询，但不会被看到或听到。",
      you: "您正在旁听。所有人都能看到您是旁听者；您的画面和声音不会发送。",
    },
    ru: {
      check: "Вы входите как наблюдатель: вы видите и слышите консультацию, камера и микрофон не используются, все видят вас в списке как наблюдателя.",
      join: "Войти как наблюдатель",
      present: "Наблюдают: {names}. Наблюдатели видят и слышат консультацию, их не видно и не слышно.",
      you: "Вы наблюдатель. Все видят вас в списке как наблюдателя; ваше изображение и голос не передаются.",
    },
  };

  function attach(opts) {
    const S = opts.state;
    const $ = (id) => document.getElementById(id);

    function s() {
      return { ...STRINGS.en, ...(STRINGS[S.lang] || {}) };
    }

    function isObserver() {
      return !!S.you && S.you.role === "observer";
    }

    /** The observer's device check: no camera or microphone asked for; say so. */
    function prepareCheck() {
      if (!isObserver()) return false;
      const note = $("perm-note");
      note.hidden = false;
      note.dataset.kind = "info";
      $("perm-title").hidden = true;
      $("perm-text").textContent = s().check;
      $("perm-anyway").hidden = true;
      $("perm-retry").hidden = true;
      for (const id of ["pre-mic", "pre-cam", "camera-select", "mic-select"]) $(id).disabled = true;
      const join = $("join-btn");
      join.removeAttribute("data-i18n");
      join.textContent = s().join;
      join.disabled = false;
      document.body.dataset.observer = "1";
      return true;
    }

    function ensureBanner() {
      let el = $("observer-banner");
      if (el) return el;
      const stage = document.querySelector("#screen-call .stage");
      if (!stage) return null;
      el = document.createElement("p");
      el.id = "observer-banner";
      el.className = "banner observer-banner";
      el.setAttribute("role", "status");
      stage.parentElement.insertBefore(el, stage);
      return el;
    }

    function render() {
      if (isObserver() && S.screen === "check") {
        $("perm-text").textContent = s().check;
        $("join-btn").textContent = s().join;
      }
      const el = ensureBanner();
      if (!el) return;
      const others = Object.values(S.participants).filter((p) => p.role === "observer").map((p) => p.name);
      const lines = [];
      if (isObserver()) lines.push(s().you);
      if (others.length) lines.push(s().present.replace("{names}", others.join(", ")));
      el.textContent = lines.join(" ");
      el.hidden = lines.length === 0;
      for (const id of ["btn-mic", "btn-cam"]) {
        const b = $(id);
        if (b) b.hidden = isObserver();
      }
    }

    return { isObserver, prepareCheck, render };
  }

  window.SB_Observer = Object.freeze({ attach });
})();

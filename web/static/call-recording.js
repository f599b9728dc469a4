/* Seoulbridge call page: recording with consent (signaling/PROTOCOL.md, "Recording
 * with consent").
 *
 * - Counselors/admins get a "Record" control; while a request or a recording is
 *   open it becomes "Stop recording" (record_start / record_stop).
 * - Everyone sees the indicator in the header while the state is asking,
 *   recording or paused, and a short notice when a recording stops.
 * - A record_consent_request opens a modal dialog: Agree / Decline
 *   (record_consent / record_decline).
 *
 * Plain script: defines window.SB_Recording. call.js calls
 * SB_Recording.attach({state, send, t, toast, canModerate, log}) once, hands it
 * every record_* message with handle(msg) and calls render() after its own
 * renders. State for tests is written onto the page state (window.seoulbridge):
 * recordState, recordPending, recordRequestedBy, recordReason, recordError,
 * consentAsked.
 *
 * A recording the server could not write stops with error_code
 * "media_unavailable": every page says so in its own words (rec_failed).
 */
(function () {
  "use strict";

  const ACTIVE = ["asking", "recording", "paused"];

  function attach(opts) {
    const S = opts.state;
    const t = opts.t;
    const $ = (id) => document.getElementById(id);
    const els = {
      indicator: $("rec-indicator"),
      indicatorText: $("rec-indicator-text"),
      button: $("btn-record"),
      buttonLabel: document.querySelector("#btn-record .ctl-label"),
      dialog: $("rec-dialog"),
      title: $("rec-dialog-title"),
      ask: $("rec-dialog-ask"),
      paused: $("rec-dialog-paused"),
      all: $("rec-dialog-all"),
      agree: $("rec-agree"),
      decline: $("rec-decline"),
    };

    S.recordState = "idle";
    S.recordPending = [];
    S.recordRequestedBy = null;
    S.recordReason = "";
    S.recordError = null;
    S.consentAsked = false;
    let returnFocus = null;
    let waitTimer = null; // the Record control waits for the server's answer

    function log(...a) {
      if (opts.log) opts.log(...a);
    }

    function myId() {
      return S.you ? S.you.id : null;
    }

    function nameOf(pid) {
      if (!pid) return t("rec_someone");
      if (S.you && S.you.id === pid) return S.you.name;
      const p = S.participants[pid];
      return p ? p.name : t("rec_someone");
    }

    // -------------------------------------------------------------- messages
    function handle(msg) {
      if (msg.type === "record_indicator") onIndicator(msg);
      else if (msg.type === "record_consent_request") onRequest(msg);
    }

    function onIndicator(msg) {
      const before = S.recordState;
      clearTimeout(waitTimer);
      els.button.removeAttribute("aria-disabled");
      S.recordState = msg.state || "idle";
      S.recordPending = Array.isArray(msg.pending) ? msg.pending : [];
      S.recordRequestedBy = msg.requested_by || null;
      S.recordReason = msg.reason || "";
      S.recordError = msg.error_code || null;
      log("recording", before, "->", S.recordState, S.recordReason, S.recordError || "");
      const asked = ACTIVE.includes(S.recordState) && S.recordPending.includes(myId());
      if (!asked && S.consentAsked) {
        // Someone else declined, the counselor withdrew, or the answer was taken.
        S.consentAsked = false;
        closeDialog();
      }
      if (before !== S.recordState) {
        if (S.recordState === "stopped" && ACTIVE.includes(before)) {
          opts.toast(S.recordError === "media_unavailable" ? t("rec_failed") : stopNotice(S.recordReason));
        }
        else if (S.recordState === "recording" && before === "asking") opts.toast(t("rec_started"));
      }
      render();
    }

    function onRequest(msg) {
      if (msg.requested_by) S.recordRequestedBy = msg.requested_by;
      S.consentAsked = true;
      openDialog();
    }

    /** "declined by p-…" / "stopped by p-…" / "everyone left" in the reader's words. */
    function stopNotice(reason) {
      const m = /^(declined|stopped) by (\S+)$/.exec(reason || "");
      if (!m) return t("rec_stopped");
      const mine = m[2] === myId();
      if (m[1] === "declined") return mine ? t("rec_declined_you") : t("rec_declined_by", { name: nameOf(m[2]) });
      return mine ? t("rec_stopped_you") : t("rec_stopped_by", { name: nameOf(m[2]) });
    }

    // ---------------------------------------------------------------- dialog
    function openDialog() {
      if (S.screen !== "call") return;
      renderDialog();
      if (!els.dialog.open) {
        log("recording consent asked");
        const active = document.activeElement;
        returnFocus = active && active !== document.body ? active : null;
        els.dialog.showModal();
      }
      // The question first (screen readers read it), not a pre-selected answer.
      els.title.focus();
    }

    function closeDialog() {
      if (!els.dialog.open) return;
      els.dialog.close();
      const back = returnFocus && returnFocus.isConnected && !returnFocus.closest("[hidden]") ? returnFocus : $("btn-mic");
      returnFocus = null;
      if (back) back.focus({ preventScroll: true });
    }

    function answer(agree) {
      log("recording consent:", agree ? "agree" : "decline");
      S.consentAsked = false;
      opts.send({ type: agree ? "record_consent" : "record_decline" });
      closeDialog();
      if (agree) confirmAgreement(1);
    }

    /**
     * An agreement must show up in the indicator (we leave its pending list). If it
     * does not within a few seconds (lost in a reconnect, or the server took it but
     * failed before telling anyone), say it again: agreeing twice is harmless and
     * makes the server send the indicator, so no page shows "waiting" while the
     * server records.
     */
    function confirmAgreement(attempt) {
      clearTimeout(confirmAgreement.timer);
      confirmAgreement.timer = setTimeout(() => {
        if (S.consentAsked || !ACTIVE.includes(S.recordState) || !S.recordPending.includes(myId())) return;
        log("recording consent: not confirmed, sending it again", attempt);
        opts.send({ type: "record_consent" });
        if (attempt < 3) confirmAgreement(attempt + 1);
      }, 3000);
    }

    function renderDialog() {
      els.ask.textContent = t("rec_dialog_ask", { name: nameOf(S.recordRequestedBy) });
      // A late joiner: the recording runs already, paused until they answer.
      els.paused.hidden = S.recordState !== "paused";
      els.all.hidden = S.recordState === "paused";
    }

    /** Tab and Shift+Tab stay on the two answers while the question is open. */
    function trapFocus(e) {
      if (e.key !== "Tab") return;
      const items = [els.agree, els.decline];
      const i = items.indexOf(document.activeElement);
      e.preventDefault();
      const next = i < 0 ? (e.shiftKey ? items.length - 1 : 0) : (i + (e.shiftKey ? items.length - 1 : 1)) % items.length;
      items[next].focus();
    }

    // ---------------------------------------------------------------- render
    function render() {
      const state = S.recordState;
      const shown = ACTIVE.includes(state) && (S.screen === "call" || S.screen === "lobby");
      els.indicator.hidden = !shown;
      els.indicator.dataset.state = state;
      if (state === "recording") els.indicatorText.textContent = t("rec_on");
      else if (state === "asking") els.indicatorText.textContent = t("rec_asking", { n: S.recordPending.length });
      else if (state === "paused") els.indicatorText.textContent = t("rec_paused");
      else els.indicatorText.textContent = "";

      const moderate = opts.canModerate();
      els.button.hidden = !moderate;
      const active = ACTIVE.includes(state);
      els.button.dataset.rec = active ? "on" : "off";
      els.buttonLabel.textContent = t(active ? "rec_stop" : "rec_start");
      els.button.setAttribute("aria-label", t(active ? "rec_stop_label" : "rec_start_label"));
      els.button.title = els.button.getAttribute("aria-label");

      if (els.dialog.open) {
        if (S.screen !== "call") {
          S.consentAsked = false;
          closeDialog();
        } else renderDialog();
      }
    }

    // ---------------------------------------------------------------- wiring
    els.button.addEventListener("click", () => {
      // One request at a time: the next indicator (or 5 s) makes the control work again.
      // aria-disabled, not disabled: keyboard focus stays on the control.
      if (els.button.getAttribute("aria-disabled") === "true") return;
      if (!opts.send({ type: ACTIVE.includes(S.recordState) ? "record_stop" : "record_start" })) return;
      els.button.setAttribute("aria-disabled", "true");
      clearTimeout(waitTimer);
      waitTimer = setTimeout(() => els.button.removeAttribute("aria-disabled"), 5000);
    });
    els.agree.addEventListener("click", () => answer(true));
    els.decline.addEventListener("click", () => answer(false));
    els.dialog.addEventListener("keydown", trapFocus);
    // Escape must not dismiss the question unanswered: it stays until Agree or Decline.
    els.dialog.addEventListener("cancel", (e) => e.preventDefault());
    els.dialog.addEventListener("close", () => {
      log("recording dialog closed", S.consentAsked ? "unanswered" : "answered");
      // Closed by the browser anyway (a repeated Escape): ask again shortly.
      if (S.consentAsked) setTimeout(() => S.consentAsked && openDialog(), 300);
    });

    render();
    return { handle, render };
  }

  window.SB_Recording = Object.freeze({ attach });
})();

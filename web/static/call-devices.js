/* Seoulbridge call page: this device's camera and microphone on screen.
 *
 * The device check (camera and microphone selects, the permission note, the
 * level meter, the previews), the microphone and camera buttons there and in the
 * call (sent as `mute`), and switching devices, which republishes the new track
 * in a call. The tracks themselves are call-media.js's (SB_LocalMedia); the own
 * tile is drawn by call-tiles.js.
 *
 * Plain script: defines window.SB_Devices. call.js calls
 * SB_Devices.attach({state, media, send, t, toast, icons, renderSelf, republish})
 * once and gets {start, render, sendMute, startMeter, stopMeter}: start() asks for
 * camera and microphone, render() after its own renders, sendMute() on joining a
 * call. Mute state is on the page state (audioMuted, videoMuted, micLevel).
 */
(function () {
  "use strict";

  function attach(opts) {
    const S = opts.state;
    const { media, send, t, toast, icons, renderSelf, republish } = opts;
    const $ = (id) => document.getElementById(id);

    async function start(audioDeviceId, videoDeviceId) {
      const started = media.start(audioDeviceId, videoDeviceId);
      renderPermNote(); // "asking" while the browser's prompt is up
      await started;
      applyMuteToTracks();
      attachLocal();
      await fillDeviceSelects();
      renderPermNote();
      render();
      $("join-btn").disabled = false;
      if (S.screen === "check" || S.screen === "lobby") startMeter();
      await republish();
    }

    async function switchDevice(kind, deviceId) {
      // Replace one kind of track, keep the other, and publish the new one if in a call.
      if (!(await media.switchDevice(kind, deviceId))) {
        toast(t("device_busy"));
        return;
      }
      applyMuteToTracks();
      attachLocal();
      render();
      renderPermNote();
      if (kind === "audio" && (S.screen === "check" || S.screen === "lobby")) startMeter();
      await republish();
    }

    async function fillDeviceSelects() {
      const devices = await media.devices();
      const fill = (select, kind, current) => {
        const list = devices.filter((d) => d.kind === kind && d.deviceId);
        select.textContent = "";
        if (!list.length) {
          const o = new Option(t("device_none"), "");
          select.add(o);
          select.disabled = true;
          return;
        }
        select.disabled = false;
        list.forEach((d, i) => {
          const label = d.label || (d.deviceId === "default" ? t("device_default") : `${kind === "videoinput" ? t("camera") : t("microphone")} ${i + 1}`);
          select.add(new Option(label, d.deviceId));
        });
        if (current) select.value = current;
      };
      fill($("camera-select"), "videoinput", media.deviceId("video"));
      fill($("mic-select"), "audioinput", media.deviceId("audio"));
    }

    function renderPermNote() {
      const note = $("perm-note");
      const title = $("perm-title");
      const text = $("perm-text");
      const anyway = $("perm-anyway");
      const retry = $("perm-retry");
      const kind = S.mediaError;
      note.hidden = !kind;
      if (!kind) return;
      note.dataset.kind = kind === "asking" ? "info" : "warn";
      title.hidden = kind !== "blocked";
      title.textContent = t("perm_blocked_title");
      const texts = {
        asking: "perm_asking",
        blocked: "perm_blocked_help",
        busy: "device_busy",
        none: "no_devices",
        unavailable: "no_devices",
        no_camera: "no_camera",
        no_microphone: "no_microphone",
      };
      text.textContent = t(texts[kind]);
      anyway.hidden = !(kind === "blocked" || kind === "busy");
      retry.hidden = !(kind === "blocked" || kind === "busy" || kind === "none");
      const joinKey = S.hasAudio || S.hasVideo || kind === "asking" ? "join" : "join_without_media";
      $("join-btn").dataset.i18n = joinKey;
      $("join-btn").textContent = t(joinKey);
    }

    function attachLocal() {
      const video = media.track("video");
      const stream = video ? new MediaStream([video]) : null;
      for (const id of ["preview", "lobby-preview", "self-video"]) {
        const el = $(id);
        if (el.srcObject !== stream) el.srcObject = stream;
        if (stream) el.play().catch(() => {});
      }
    }

    function applyMuteToTracks() {
      media.setEnabled(!S.audioMuted, !S.videoMuted);
    }

    function setMuted(kind, muted) {
      if (kind === "audio") S.audioMuted = muted;
      else S.videoMuted = muted;
      applyMuteToTracks();
      render();
      sendMute();
    }

    function sendMute() {
      if (S.screen !== "call") return;
      send({ type: "mute", audio_muted: S.audioMuted || !S.hasAudio, video_muted: S.videoMuted || !S.hasVideo });
    }

    function render() {
      const audioOff = S.audioMuted || !S.hasAudio;
      const videoOff = S.videoMuted || !S.hasVideo;
      // Device check round buttons.
      const preMic = $("pre-mic");
      preMic.innerHTML = audioOff ? icons.micOff : icons.micOn;
      preMic.setAttribute("aria-pressed", String(audioOff));
      preMic.setAttribute("aria-label", t(audioOff ? "mic_on" : "mic_off"));
      preMic.title = preMic.getAttribute("aria-label");
      preMic.disabled = !S.hasAudio;
      const preCam = $("pre-cam");
      preCam.innerHTML = videoOff ? icons.camOff : icons.camOn;
      preCam.setAttribute("aria-pressed", String(videoOff));
      preCam.setAttribute("aria-label", t(videoOff ? "cam_on" : "cam_off"));
      preCam.title = preCam.getAttribute("aria-label");
      preCam.disabled = !S.hasVideo;
      $("preview-off").hidden = !videoOff;
      $("lobby-preview-off").hidden = !videoOff;
      // Call controls: the visible label names the device, the aria-label the action.
      const mic = $("btn-mic");
      mic.setAttribute("aria-pressed", String(audioOff));
      mic.setAttribute("aria-label", t(audioOff ? "mic_on" : "mic_off"));
      mic.title = mic.getAttribute("aria-label");
      mic.querySelector(".ctl-label").textContent = t("microphone");
      mic.disabled = !S.hasAudio;
      const cam = $("btn-cam");
      cam.setAttribute("aria-pressed", String(videoOff));
      cam.setAttribute("aria-label", t(videoOff ? "cam_on" : "cam_off"));
      cam.title = cam.getAttribute("aria-label");
      cam.querySelector(".ctl-label").textContent = t("camera");
      cam.disabled = !S.hasVideo;
      renderSelf(audioOff, videoOff);
    }

    function startMeter() {
      const fill = $("meter-fill");
      const meterEl = $("mic-meter");
      let last = -1;
      media.startMeter((level) => {
        fill.style.transform = `scaleX(${level.toFixed(3)})`;
        const pct = Math.round(level * 100);
        if (pct !== last) {
          meterEl.setAttribute("aria-valuenow", String(pct));
          last = pct;
        }
        S.micLevel = level;
      });
    }

    function stopMeter() {
      media.stopMeter();
    }

    $("pre-mic").addEventListener("click", () => setMuted("audio", !S.audioMuted));
    $("pre-cam").addEventListener("click", () => setMuted("video", !S.videoMuted));
    $("btn-mic").addEventListener("click", () => setMuted("audio", !S.audioMuted));
    $("btn-cam").addEventListener("click", () => setMuted("video", !S.videoMuted));
    $("camera-select").addEventListener("change", (e) => e.target.value && switchDevice("video", e.target.value));
    $("mic-select").addEventListener("change", (e) => e.target.value && switchDevice("audio", e.target.value));
    $("perm-retry").addEventListener("click", () => start());
    navigator.mediaDevices?.addEventListener?.("devicechange", () => {
      if (S.screen === "check") fillDeviceSelects();
    });

    return { start, render, sendMute, startMeter, stopMeter };
  }

  window.SB_Devices = Object.freeze({ attach });
})();

/* Seoulbridge call page: this device's camera and microphone.
 *
 * Gets as much as the browser gives (camera + microphone, else one of them, else
 * nothing) and says why in `error`: "asking" while the permission prompt is up,
 * then null (all good), "no_camera", "no_microphone", "blocked" (permission
 * refused), "busy" (another program holds the device), "none" (no devices) or
 * "unavailable" (no getUserMedia, e.g. not a secure context). Also the microphone
 * level (WebAudio AnalyserNode) and the knock chime, which share one AudioContext.
 *
 * Plain script: defines window.SB_LocalMedia. No DOM.
 */
(function () {
  "use strict";

  const VIDEO = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 24, max: 30 } };
  const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

  function withDevice(base, deviceId) {
    return deviceId ? { ...base, deviceId: { exact: deviceId } } : { ...base };
  }

  function classify(error) {
    if (!error) return "none";
    if (error.name === "NotAllowedError" || error.name === "SecurityError") return "blocked";
    if (error.name === "NotReadableError" || error.name === "AbortError") return "busy";
    return "none";
  }

  class LocalMedia {
    constructor({ log } = {}) {
      this.log = log || (() => {});
      this.stream = null;
      this.error = null;
      this._ctx = null;
      this._meter = null;
    }

    get supported() {
      return !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
    }

    track(kind) {
      if (!this.stream) return null;
      const tracks = kind === "audio" ? this.stream.getAudioTracks() : this.stream.getVideoTracks();
      return tracks[0] || null;
    }

    get hasAudio() {
      return !!this.track("audio");
    }

    get hasVideo() {
      return !!this.track("video");
    }

    /** (Re)start capture, optionally on given devices. Never throws: see `error`. */
    async start(audioDeviceId, videoDeviceId) {
      if (!this.supported) {
        this.error = "unavailable";
        return;
      }
      this.error = "asking";
      const audio = withDevice(AUDIO, audioDeviceId);
      const video = withDevice(VIDEO, videoDeviceId);
      let stream = null;
      let lastError = null;
      for (const [a, v] of [[audio, video], [audio, false], [false, video]]) {
        try {
          stream = await navigator.mediaDevices.getUserMedia({ audio: a, video: v });
          break;
        } catch (e) {
          this.log("getUserMedia failed", a ? "audio" : "", v ? "video" : "", e.name, e.message);
          lastError = e;
          if (classify(e) === "blocked") break;
        }
      }
      this.stop();
      this.stream = stream;
      if (!stream) this.error = classify(lastError);
      else if (!this.hasVideo) this.error = "no_camera";
      else if (!this.hasAudio) this.error = "no_microphone";
      else this.error = null;
    }

    /** Use another camera or microphone; the other kind stays. False if it failed. */
    async switchDevice(kind, deviceId) {
      let fresh;
      try {
        fresh = await navigator.mediaDevices.getUserMedia(
          kind === "audio" ? { audio: withDevice(AUDIO, deviceId) } : { video: withDevice(VIDEO, deviceId) },
        );
      } catch (e) {
        this.log("switch device failed", kind, e.name);
        return false;
      }
      const track = kind === "audio" ? fresh.getAudioTracks()[0] : fresh.getVideoTracks()[0];
      const stream = this.stream || new MediaStream();
      const old = this.track(kind);
      if (old) {
        stream.removeTrack(old);
        old.stop();
      }
      stream.addTrack(track);
      this.stream = stream;
      if (this.error === "no_camera" || this.error === "no_microphone") {
        this.error = this.hasVideo ? (this.hasAudio ? null : "no_microphone") : "no_camera";
      }
      return true;
    }

    /** Mute without renegotiation: a disabled track sends silence / black. */
    setEnabled(audio, video) {
      const a = this.track("audio");
      const v = this.track("video");
      if (a) a.enabled = audio;
      if (v) v.enabled = video;
    }

    /** The current device id of a kind, for the device selects. */
    deviceId(kind) {
      const tr = this.track(kind);
      return tr && tr.getSettings ? tr.getSettings().deviceId || null : null;
    }

    async devices() {
      try {
        return await navigator.mediaDevices.enumerateDevices();
      } catch {
        return [];
      }
    }

    stop() {
      this.stopMeter();
      if (this.stream) for (const tr of this.stream.getTracks()) tr.stop();
      this.stream = null;
    }

    /** The page's one AudioContext; create it inside a click so that it may play. */
    audioContext() {
      if (!this._ctx) {
        const Ctx = window.AudioContext || window.webkitAudioContext;
        if (!Ctx) return null;
        this._ctx = new Ctx();
      }
      if (this._ctx.state === "suspended") this._ctx.resume().catch(() => {});
      return this._ctx;
    }

    /** Call onLevel(0..1) every animation frame with the microphone level. */
    startMeter(onLevel) {
      this.stopMeter();
      const track = this.track("audio");
      const ctx = this.audioContext();
      if (!track || !ctx) return;
      const source = ctx.createMediaStreamSource(new MediaStream([track]));
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 1024;
      source.connect(analyser);
      const data = new Float32Array(analyser.fftSize);
      let raf = 0;
      const tick = () => {
        analyser.getFloatTimeDomainData(data);
        let sum = 0;
        for (let i = 0; i < data.length; i++) sum += data[i] * data[i];
        // RMS in dBFS, -60..0 onto 0..1.
        const db = 20 * Math.log10(Math.sqrt(sum / data.length) + 1e-8);
        onLevel(track.enabled ? Math.max(0, Math.min(1, (db + 60) / 60)) : 0);
        raf = requestAnimationFrame(tick);
      };
      raf = requestAnimationFrame(tick);
      this._meter = () => {
        cancelAnimationFrame(raf);
        source.disconnect();
      };
    }

    stopMeter() {
      if (this._meter) this._meter();
      this._meter = null;
    }

    /** A short three-note chime: someone is waiting in the lobby. */
    chime() {
      const ctx = this.audioContext();
      if (!ctx) return;
      const now = ctx.currentTime;
      [880, 660, 880].forEach((freq, i) => {
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        osc.type = "sine";
        osc.frequency.value = freq;
        const start = now + i * 0.22;
        gain.gain.setValueAtTime(0.0001, start);
        gain.gain.exponentialRampToValueAtTime(0.25, start + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.2);
        osc.connect(gain).connect(ctx.destination);
        osc.start(start);
        osc.stop(start + 0.21);
      });
    }
  }

  window.SB_LocalMedia = LocalMedia;
})();

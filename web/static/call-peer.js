/* Seoulbridge call page: the one RTCPeerConnection to the server.
 *
 * Implements "Media negotiation" of signaling/PROTOCOL.md: the server always
 * offers and this side only answers. For every offer: setRemoteDescription; put
 * the local microphone and camera on the `publish` mids (replaceTrack, direction
 * "sendonly"); map every other mid to its participant from `tracks` (again after
 * every offer: a mid may change owner); answer after ICE gathering completes or
 * ~2 s, whichever is first, and trickle later candidates as `ice_candidate`.
 *
 * An offer with a different ICE ufrag / DTLS fingerprint comes from a new
 * server-side peer (after a reconnect): it gets a fresh RTCPeerConnection.
 *
 * Plain script: defines window.SB_CallPeer. No DOM, no socket: it is given
 * send(), the local tracks and callbacks.
 */
(function () {
  "use strict";

  const ICE_GATHER_WAIT_MS = 2000;
  const OFFERS_KEPT = 5;

  /**
   * Simulcast encodings, when the server's offer asks for them (a=simulcast:recv
   * q;h;f): lowest first, by the camera's height. The lowest is capped so that
   * two cameras at full frame rate fit a 500 kbit/s link beside two voices; the
   * server picks one encoding and temporal layers (L1T3) per subscriber. A
   * camera of 480 lines or less gets two encodings (Chrome makes no more).
   */
  function simulcastPlan(height) {
    if (height >= 540) {
      return {
        q: { scaleResolutionDownBy: 4, maxBitrate: 150000 },
        h: { scaleResolutionDownBy: 2, maxBitrate: 500000 },
        f: { scaleResolutionDownBy: 1, maxBitrate: 1500000 },
      };
    }
    return {
      q: { scaleResolutionDownBy: 2, maxBitrate: 150000 },
      h: { scaleResolutionDownBy: 1, maxBitrate: 1000000 },
      f: { active: false },
    };
  }

  /** ICE credentials and DTLS fingerprint: which server-side peer an SDP comes from. */
  function sdpSession(sdp) {
    const pick = (re) => (sdp.match(re) || [])[1] || "";
    return `${pick(/a=ice-ufrag:(\S+)/)}|${pick(/a=fingerprint:(\S+ \S+)/)}`;
  }

  function iceGathered(pc, timeoutMs) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      };
      const check = () => {
        if (pc.iceGatheringState === "complete") done();
      };
      const timer = setTimeout(done, timeoutMs);
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  /**
   * Whether the media path went silent: nothing at all received on the transport (RTP,
   * RTCP or STUN: its bytesReceived) for `silentMs`, right after media was arriving
   * (inbound RTP packets in `steadyShare` of the polls of the `historyMs` before: one
   * poll by default, for a connection only a second old may be the one that dies).
   * Browsers call a connection "disconnected" only ~6 s without answers to their ICE
   * checks, and after a new address (Wi-Fi to mobile) nothing else says so: media came
   * back 12.4 s after one. A page that receives no media (alone in the call) never looks
   * silent; `reset()` when the tracks change (an offer: the media of whoever left stops).
   */
  class SilenceWatch {
    constructor({ silentMs = 2500, historyMs = 1000, pollMs = 500, steadyShare = 0.5 } = {}) {
      this.silentMs = silentMs;
      this.historyMs = historyMs;
      this.needed = Math.max(1, Math.floor((historyMs / pollMs) * steadyShare));
      this.reset();
    }

    reset() {
      this.lastBytes = null;
      this.lastChange = null;
      this.lastPackets = null;
      this.mediaPolls = [];
    }

    /**
     * One poll at `now` (ms): the transport's bytesReceived and the inbound RTP packets
     * received so far (either null: not reported). True when the path went silent.
     */
    observe(now, bytes, packets) {
      if (packets !== null && packets !== undefined) {
        if (this.lastPackets !== null && packets > this.lastPackets) this.mediaPolls.push(now);
        this.lastPackets = packets;
      }
      if (bytes === null || bytes === undefined) return false;
      if (this.lastBytes === null || bytes !== this.lastBytes) {
        this.lastBytes = bytes;
        this.lastChange = now;
        const from = now - this.historyMs;
        while (this.mediaPolls.length && this.mediaPolls[0] < from) this.mediaPolls.shift();
        return false;
      }
      const steady = this.mediaPolls.filter((t) => t >= this.lastChange - this.historyMs).length;
      return steady >= this.needed && now - this.lastChange >= this.silentMs;
    }
  }

  /** inbound-rtp counters summed per transceiver mid, and the transport's bytesReceived. */
  async function inboundByMid(pc) {
    const trackToMid = {};
    for (const tr of pc.getTransceivers()) {
      if (tr.mid !== null && tr.receiver && tr.receiver.track) trackToMid[tr.receiver.track.id] = tr.mid;
    }
    const out = {};
    const report = await pc.getStats();
    let transportBytes = null;
    report.forEach((r) => {
      if (r.type === "transport" && typeof r.bytesReceived === "number") {
        transportBytes = (transportBytes || 0) + r.bytesReceived;
      }
      if (r.type !== "inbound-rtp") return;
      const mid = r.mid !== undefined ? r.mid : trackToMid[r.trackIdentifier];
      if (mid === undefined) return;
      const c = (out[mid] ||= {
        kind: r.kind,
        framesDecoded: 0,
        framesReceived: 0,
        bytesReceived: 0,
        packetsReceived: 0,
        totalSamplesReceived: 0,
        audioLevel: 0,
        frameWidth: 0,
        frameHeight: 0,
        packetsLost: 0,
        concealedSamples: 0,
        jitter: 0,
        framesPerSecond: 0,
      });
      c.framesDecoded += r.framesDecoded || 0;
      c.framesReceived += r.framesReceived || 0;
      c.bytesReceived += r.bytesReceived || 0;
      c.packetsReceived += r.packetsReceived || 0;
      c.totalSamplesReceived += r.totalSamplesReceived || 0;
      c.audioLevel = Math.max(c.audioLevel, r.audioLevel || 0);
      c.frameWidth = r.frameWidth || c.frameWidth;
      c.frameHeight = r.frameHeight || c.frameHeight;
      c.packetsLost += r.packetsLost || 0;
      c.concealedSamples += r.concealedSamples || 0;
      c.jitter = Math.max(c.jitter, r.jitter || 0);
      c.framesPerSecond = r.framesPerSecond || c.framesPerSecond;
    });
    return { byMid: out, transportBytes };
  }

  /**
   * What this page sends, from pc.getStats(): the estimate of the bitrate the path can
   * carry (candidate-pair availableOutgoingBitrate, bit/s; null until the browser has
   * one) and each video encoding sent (one per simulcast layer, by rid).
   */
  async function outbound(pc) {
    const out = { availableOutgoingBitrate: null, video: [] };
    const report = await pc.getStats();
    let selected = null;
    report.forEach((r) => {
      if (r.type === "transport" && r.selectedCandidatePairId) selected = r.selectedCandidatePairId;
    });
    report.forEach((r) => {
      if (r.type === "candidate-pair" && typeof r.availableOutgoingBitrate === "number") {
        if (r.id === selected || (!selected && r.nominated && r.state === "succeeded")) out.availableOutgoingBitrate = r.availableOutgoingBitrate;
      } else if (r.type === "outbound-rtp" && r.kind === "video") {
        out.video.push({
          rid: r.rid === undefined ? null : r.rid,
          frameWidth: r.frameWidth || 0,
          frameHeight: r.frameHeight || 0,
          framesPerSecond: r.framesPerSecond || 0,
          bytesSent: r.bytesSent || 0,
          qualityLimitationReason: r.qualityLimitationReason || "none",
          active: r.active !== false,
        });
      }
    });
    // the largest layer first
    out.video.sort((a, b) => b.frameWidth * b.frameHeight - a.frameWidth * a.frameHeight || String(a.rid).localeCompare(String(b.rid)));
    return out;
  }

  class CallPeer {
    /** The counters stats() gives per participant, all zero: also for one nothing came from yet. */
    static emptyStats() {
      return {
        framesDecoded: 0,
        framesReceived: 0,
        videoBytesReceived: 0,
        frameWidth: 0,
        frameHeight: 0,
        audioBytesReceived: 0,
        audioPacketsReceived: 0,
        totalSamplesReceived: 0,
        audioLevel: 0,
        // Added for the connection details (call-link.js); the keys above are unchanged.
        framesPerSecond: 0,
        videoPacketsReceived: 0,
        videoPacketsLost: 0,
        videoJitter: 0, // seconds
        audioPacketsLost: 0,
        audioJitter: 0, // seconds
        concealedSamples: 0,
      };
    }

    /**
     * @param {object} o
     * @param {(msg: object) => boolean} o.send            a protocol message to the server
     * @param {(kind: string) => MediaStreamTrack|null} o.localTrack
     * @param {RTCIceServer[]} o.iceServers                from `welcome`
     * @param {(...a: any[]) => void} [o.log]
     * @param {(state: string, pc: RTCPeerConnection) => void} [o.onState]  connectionState changes
     * @param {() => void} [o.onTracks]                   remote tracks or their owners changed
     */
    constructor({ send, localTrack, iceServers, log, onState, onTracks }) {
      this.send = send;
      this.localTrack = localTrack;
      this.iceServers = iceServers || [];
      this.log = log || (() => {});
      this.onState = onState || (() => {});
      this.onTracks = onTracks || (() => {});
      this.pc = null;
      this.state = "new";
      this.trackMap = {}; // mid -> {participant_id, kind}, from the latest offer
      this.publish = {}; // kind -> mid
      this.offersHandled = 0;
      this.offers = []; // the last few offers, for debugging
      this.lastError = null;
      this._queue = Promise.resolve();
      this._answerSent = false;
      this._serverSession = null;
      this._baseline = {}; // mid -> counters that belonged to a previous owner of the mid
      this._lastOwner = {}; // mid -> the participant it last carried (kept while the mid is idle)
      this._closed = false;
    }

    /** Handle a server `offer`; offers are answered strictly one after another. */
    offer(msg) {
      this._queue = this._queue
        .then(() => this._answer(msg))
        .catch((e) => {
          this.lastError = String(e);
          this.log("negotiation failed", String(e));
        });
      return this._queue;
    }

    /** Put the current local tracks on the publish mids (after a device change). */
    async republish() {
      if (!this.pc) return;
      for (const [kind, mid] of Object.entries(this.publish)) {
        const tr = this.pc.getTransceivers().find((x) => x.mid === mid);
        const track = this.localTrack(kind);
        if (tr && tr.sender.track !== track) {
          try {
            await tr.sender.replaceTrack(track);
          } catch (e) {
            this.log("replaceTrack failed", kind, String(e));
          }
        }
      }
    }

    /** participant id -> {audio, video} remote MediaStreamTracks, by the latest offer's map. */
    remoteTracks() {
      const out = {};
      if (!this.pc) return out;
      for (const tr of this.pc.getTransceivers()) {
        const info = tr.mid !== null ? this.trackMap[tr.mid] : undefined;
        if (!info || !tr.receiver || !tr.receiver.track) continue;
        const entry = (out[info.participant_id] ||= { video: null, audio: null });
        entry[info.kind] = tr.receiver.track;
      }
      return out;
    }

    /**
     * Received media per participant id, from pc.getStats() inbound-rtp reports
     * mapped through the mid -> participant map. Counters a reused mid carried for
     * its previous owner are not counted for the new one.
     */
    async stats() {
      const out = {};
      if (!this.pc) return out;
      const { byMid, transportBytes } = await inboundByMid(this.pc);
      /** Everything the transport received so far (bytes; null when not reported), and
       * the inbound RTP packets of every mid. */
      this.transportBytesReceived = transportBytes;
      this.mediaPacketsReceived = Object.values(byMid).reduce((n, c) => n + c.packetsReceived, 0);
      for (const [mid, c] of Object.entries(byMid)) {
        const info = this.trackMap[mid];
        if (!info) continue; // mids not listed in the latest offer carry nothing
        const o = (out[info.participant_id] ||= CallPeer.emptyStats());
        const base = this._baseline[mid] || {};
        const d = (k) => Math.max(0, (c[k] || 0) - (base[k] || 0));
        if (info.kind === "video") {
          o.framesDecoded += d("framesDecoded");
          o.framesReceived += d("framesReceived");
          o.videoBytesReceived += d("bytesReceived");
          o.frameWidth = c.frameWidth;
          o.frameHeight = c.frameHeight;
          o.framesPerSecond = c.framesPerSecond;
          o.videoPacketsReceived += d("packetsReceived");
          o.videoPacketsLost += d("packetsLost");
          o.videoJitter = c.jitter;
        } else {
          o.audioBytesReceived += d("bytesReceived");
          o.audioPacketsReceived += d("packetsReceived");
          o.totalSamplesReceived += d("totalSamplesReceived");
          o.audioLevel = c.audioLevel;
          o.audioPacketsLost += d("packetsLost");
          o.audioJitter = c.jitter;
          o.concealedSamples += d("concealedSamples");
        }
      }
      return out;
    }

    /** What this page sends: {availableOutgoingBitrate, video: [{rid, frameWidth, ...}]}. */
    async outboundStats() {
      if (!this.pc) return { availableOutgoingBitrate: null, video: [] };
      return outbound(this.pc);
    }

    close() {
      this._closed = true;
      this._closePc();
    }

    // ------------------------------------------------------------ internals
    _createPc() {
      this._closePc();
      const iceServers = this.iceServers.map((s) => {
        const out = { urls: s.urls };
        if (s.username != null) out.username = s.username;
        if (s.credential != null) out.credential = s.credential;
        return out;
      });
      const pc = new RTCPeerConnection({ iceServers, bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" });
      this.pc = pc;
      this.state = pc.connectionState;
      this._answerSent = false;
      this._baseline = {};
      this._lastOwner = {};
      pc.addEventListener("track", () => {
        if (pc === this.pc) this.onTracks();
      });
      pc.addEventListener("icecandidate", (ev) => {
        // Candidates gathered before the answer went out are in its SDP already.
        if (pc !== this.pc || !this._answerSent) return;
        const c = ev.candidate;
        this.send({
          type: "ice_candidate",
          candidate: c ? c.candidate : null,
          sdp_mid: c ? c.sdpMid : null,
          sdp_mline_index: c ? c.sdpMLineIndex : null,
        });
      });
      pc.addEventListener("connectionstatechange", () => {
        if (pc !== this.pc) return;
        this.state = pc.connectionState;
        this.log("pc", pc.connectionState);
        this.onState(pc.connectionState, pc);
      });
      this.log("pc created");
      return pc;
    }

    _closePc() {
      if (!this.pc) return;
      try {
        this.pc.close();
      } catch {
        /* closed already */
      }
      this.pc = null;
      this.state = "closed";
    }

    async _answer(msg) {
      if (this._closed) return;
      const started = performance.now();
      this.offers.push({ sdp: msg.sdp, publish: msg.publish, tracks: msg.tracks });
      if (this.offers.length > OFFERS_KEPT) this.offers.shift();
      const tracks = msg.tracks || [];
      let pc = this.pc;
      const session = sdpSession(msg.sdp);
      if (pc && this._serverSession && this._serverSession !== session) {
        this.log("offer from a new server peer: new RTCPeerConnection");
        pc = null;
      }
      this._serverSession = session;
      if (!pc || pc.signalingState === "closed") pc = this._createPc();
      else await this._rememberReusedMids(pc, tracks);
      this._answerSent = false;
      try {
        await pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
      } catch (e) {
        this.log("setRemoteDescription failed, retrying on a new RTCPeerConnection", String(e));
        pc = this._createPc();
        await pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
      }
      this.publish = { ...(msg.publish || {}) };
      for (const [kind, mid] of Object.entries(this.publish)) {
        const tr = pc.getTransceivers().find((x) => x.mid === mid);
        if (!tr) {
          this.log("no transceiver for publish mid", kind, mid);
          continue;
        }
        await tr.sender.replaceTrack(this.localTrack(kind));
        tr.direction = "sendonly";
        if (kind === "video") await this._planSimulcast(tr.sender);
      }
      const map = {};
      for (const tr of tracks) {
        map[tr.mid] = { participant_id: tr.participant_id, kind: tr.kind };
        this._lastOwner[tr.mid] = tr.participant_id;
      }
      this.trackMap = map;
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      await iceGathered(pc, ICE_GATHER_WAIT_MS);
      if (pc !== this.pc) return; // replaced meanwhile
      const sdp = pc.localDescription.sdp;
      this._answerSent = true; // from now on candidates are trickled
      this.send({ type: "answer", sdp });
      this.offersHandled += 1;
      this.log("answered offer", this.offersHandled, `${Math.round(performance.now() - started)} ms`, "tracks", tracks.length);
      this.onTracks();
    }

    /** Give each simulcast encoding the offer asked for its size and bit-rate cap. */
    async _planSimulcast(sender) {
      const track = sender.track;
      const params = sender.getParameters();
      const encodings = params.encodings || [];
      if (!track || encodings.length < 2 || !encodings.every((e) => e.rid)) return;
      const plan = simulcastPlan((track.getSettings && track.getSettings().height) || 480);
      for (const e of encodings) Object.assign(e, plan[e.rid] || {});
      try {
        await sender.setParameters(params);
        this.simulcast = encodings.map((e) => ({ rid: e.rid, active: e.active !== false, scale: e.scaleResolutionDownBy, maxBitrate: e.maxBitrate }));
      } catch (e) {
        this.log("simulcast parameters refused", String(e));
      }
    }

    /** Before a mid changes owner, keep its counters so stats() counts only the new owner. */
    async _rememberReusedMids(pc, tracks) {
      const changed = [];
      for (const tr of tracks) {
        const old = this._lastOwner[tr.mid];
        if (old && old !== tr.participant_id) changed.push(tr.mid);
      }
      if (!changed.length || !pc.remoteDescription) return;
      const { byMid } = await inboundByMid(pc);
      for (const mid of changed) this._baseline[mid] = byMid[mid] || null;
    }
  }

  CallPeer.SilenceWatch = SilenceWatch;
  window.SB_CallPeer = CallPeer;
})();

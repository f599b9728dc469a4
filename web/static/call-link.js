/* Seoulbridge call page: connection quality, as the server measures it, and the
 * staff's connection details, as this browser measures them.
 *
 * The server sends `link_quality` (signaling/PROTOCOL.md, signaling/protocol.py
 * LinkQualityMessage) when it changes: `you` is this page's own connection, and per
 * other participant `link` (their connection) and `video` (what the server forwards
 * of their camera to this page: full, reduced, paused; null: no camera). Here:
 *   - each remote tile: a small bars icon (good: green, nothing else), "<name>'s
 *     connection is weak" (weak/poor), "Lower video quality for your connection"
 *     (reduced), and a covering notice "Video paused … audio continues" (paused);
 *   - the own tile and a banner by the controls when this page's connection is weak
 *     or poor; a polite live region (#link-status) says each change once;
 *   - for staff (counselor, interpreter, admin) a "Connection details" <details> with
 *     per remote participant what getStats() measures (fps, resolution, video kbit/s,
 *     packets lost, jitter, audio concealment) and what this page sends (available
 *     outgoing bitrate, each simulcast layer), refreshed every 2 s only while open.
 *
 * Plain script: defines window.SB_Link. call.js calls
 * SB_Link.attach({state, t, roleName, inbound, outbound, log}) once, where inbound()
 * is its stats() and outbound() the CallPeer's outboundStats(); it gets
 * {render, decorateTile, details}: render() after state.linkQuality, the language or
 * the participants changed; decorateTile(el, p) from call-tiles.js for each remote
 * tile it renders; details() the figures (window.seoulbridge.linkDetails()).
 */
(function () {
  "use strict";

  const DETAILS_INTERVAL_MS = 2000;
  /** A rate over less time than this is noise: the last one is given again. */
  const MIN_RATE_INTERVAL_S = 0.5;
  const STAFF = new Set(["counselor", "interpreter", "admin"]);
  const BARS = { good: 3, weak: 2, poor: 1 };

  /** Three rising bars, `level`'s number of them filled: the shape says it, not only the colour. */
  function barsIcon(level) {
    const filled = BARS[level] || 0;
    const bar = (i, x, h) =>
      `<rect x="${x}" y="${20 - h}" width="5" height="${h}" rx="1.2" ${i < filled ? 'fill="currentColor"' : 'fill="none" stroke="currentColor" stroke-width="1.6"'}/>`;
    return `<svg class="link-bars" viewBox="0 0 24 24" aria-hidden="true" focusable="false">${bar(0, 2, 7)}${bar(1, 9.5, 12)}${bar(2, 17, 17)}</svg>`;
  }


  function attach(opts) {
    const S = opts.state;
    const { t, roleName, inbound, outbound } = opts;
    const $ = (id) => document.getElementById(id);
    let shownYou = "good"; // what the banner and the live region say now
    let detailsTimer = null;
    let lastSample = null; // {at, video: {pid: bytes}, sent: {rid: bytes}, rates: {...}}
    let lastDetails = null;

    /** The latest message's entry for a participant, or null (not reported yet). */
    function entry(pid) {
      const lq = S.linkQuality;
      if (!lq || !Array.isArray(lq.participants)) return null;
      return lq.participants.find((x) => x.participant_id === pid) || null;
    }

    function otherSentence(p, e) {
      if (!e) return "";
      if (e.video === "paused") return t("link_other_paused", { name: p.name });
      if (e.link === "weak" || e.link === "poor") return t(`link_other_${e.link}`, { name: p.name });
      return "";
    }

    /** A remote tile (call-tiles.js renders it, then calls this). */
    function decorateTile(el, p) {
      const e = entry(p.id);
      const link = e ? e.link : null;
      const paused = !!e && e.video === "paused";
      const reduced = !!e && e.video === "reduced";
      setData(el, "link", link || "");
      setData(el, "video", e && e.video ? e.video : "");
      el.classList.toggle("link-paused", paused);
      const badge = el.querySelector(".tile-link");
      const weak = link === "weak" || link === "poor";
      setHidden(badge, !e);
      setData(badge, "level", link || "");
      setHtml(badge.querySelector(".tile-link-icon"), link ? barsIcon(link) : "");
      setText(badge.querySelector(".tile-link-text"), weak ? t(`link_other_${link}`, { name: p.name }) : "");
      setText(badge.querySelector(".tile-link-note"), reduced ? t("link_video_reduced") : "");
      const title = link === "good" ? t("link_good") : ""; // the bars alone, as a tooltip
      if (badge.title !== title) badge.title = title;
      const cover = el.querySelector(".tile-paused");
      setHidden(cover, !paused);
      setText(cover.querySelector(".tile-paused-text"), paused ? t("link_video_paused") : "");
      const extra = [weak ? t(`link_other_${link}`, { name: p.name }) : "", paused ? t("link_video_paused") : "", reduced ? t("link_video_reduced") : ""];
      const label = [el.getAttribute("aria-label") || "", ...extra].filter(Boolean).join(", ");
      el.setAttribute("aria-label", label);
    }

    /** The own banner and tile, the live region, the details panel. */
    function render() {
      const lq = S.linkQuality;
      const you = lq && (lq.you === "weak" || lq.you === "poor") ? lq.you : "good";
      const banner = $("link-banner");
      setHidden(banner, you === "good");
      setData(banner, "level", you);
      setHtml($("link-banner-icon"), you === "good" ? "" : barsIcon(you));
      setText($("link-banner-text"), you === "good" ? "" : t(`link_you_${you}`));
      // Said once when it gets better again (screen readers; the banner just goes away).
      if (you !== shownYou) {
        setText($("link-recovered"), you === "good" ? t("link_you_good_again") : "");
        shownYou = you;
      } else if ($("link-recovered").textContent) {
        setText($("link-recovered"), t("link_you_good_again")); // the language may have changed
      }
      const self = $("self-tile").querySelector(".tile-link");
      setHidden(self, you === "good");
      setData(self, "level", you);
      setHtml(self.querySelector(".tile-link-icon"), you === "good" ? "" : barsIcon(you));
      setText(self.querySelector(".tile-link-text"), you === "good" ? "" : t(`link_${you}`));
      renderOthersLive();
      renderDetailsShell();
    }

    /** One line per remote participant in the live region, each changed only when its words do. */
    function renderOthersLive() {
      const box = $("link-others");
      for (const el of Array.from(box.children)) if (!S.participants[el.dataset.pid]) el.remove();
      for (const p of Object.values(S.participants)) {
        let el = box.querySelector(`[data-pid="${CSS.escape(p.id)}"]`);
        if (!el) {
          el = document.createElement("span");
          el.dataset.pid = p.id;
          box.append(el);
        }
        setText(el, otherSentence(p, entry(p.id)));
      }
    }

    // ------------------------------------------------------------ details
    function isStaff() {
      return !!S.you && STAFF.has(S.you.role);
    }

    function renderDetailsShell() {
      const box = $("link-details");
      box.hidden = !isStaff() || S.screen !== "call";
      if (box.hidden && box.open) box.open = false;
      if (box.open && lastDetails) renderDetails(lastDetails);
    }

    function rate(bytes, before, dt) {
      if (before === undefined || dt <= 0) return null;
      return Math.max(0, ((bytes - before) * 8) / dt / 1000);
    }

    /** The figures: per remote participant (received) and what this page sends. */
    async function details() {
      const [received, sent] = await Promise.all([inbound(), outbound()]);
      const at = performance.now();
      const prev = lastSample;
      const dt = prev ? (at - prev.at) / 1000 : 0;
      const fresh = !prev || dt >= MIN_RATE_INTERVAL_S;
      const sample = { at, video: {}, sent: {}, rates: { video: {}, sent: {} } };
      const participants = {};
      for (const [pid, s] of Object.entries(received)) {
        const e = entry(pid);
        sample.video[pid] = s.videoBytesReceived;
        const kbps = fresh ? rate(s.videoBytesReceived, prev && prev.video[pid], dt) : prev.rates.video[pid];
        sample.rates.video[pid] = kbps ?? null;
        participants[pid] = {
          name: s.name,
          role: s.role,
          link: e ? e.link : null,
          video: e ? e.video : null,
          frameWidth: s.frameWidth,
          frameHeight: s.frameHeight,
          framesPerSecond: s.framesPerSecond,
          videoKbps: kbps ?? null,
          videoPacketsLost: s.videoPacketsLost,
          audioPacketsLost: s.audioPacketsLost,
          packetsLost: s.videoPacketsLost + s.audioPacketsLost,
          videoJitterMs: s.videoJitter * 1000,
          audioJitterMs: s.audioJitter * 1000,
          concealedSamples: s.concealedSamples,
          totalSamplesReceived: s.totalSamplesReceived,
          concealmentRatio: s.totalSamplesReceived > 0 ? s.concealedSamples / s.totalSamplesReceived : null,
        };
      }
      const layers = sent.video.map((v, i) => {
        const key = v.rid ?? `#${i}`;
        sample.sent[key] = v.bytesSent;
        const kbps = fresh ? rate(v.bytesSent, prev && prev.sent[key], dt) : prev.rates.sent[key];
        sample.rates.sent[key] = kbps ?? null;
        return { ...v, kbps: kbps ?? null };
      });
      if (fresh) lastSample = sample;
      const out = {
        at: Math.round(at),
        you: S.linkQuality ? S.linkQuality.you : null,
        participants,
        outbound: {
          availableOutgoingKbps: sent.availableOutgoingBitrate === null ? null : sent.availableOutgoingBitrate / 1000,
          layers,
        },
      };
      lastDetails = out;
      return out;
    }

    function startDetails() {
      if (detailsTimer) return;
      const tick = async () => {
        const box = $("link-details");
        if (!box.open || box.hidden || S.screen !== "call") {
          detailsTimer = null;
          return;
        }
        try {
          renderDetails(await details());
        } catch (e) {
          if (opts.log) opts.log("connection details failed", String(e));
        }
        if (box.open && detailsTimer) detailsTimer = setTimeout(tick, DETAILS_INTERVAL_MS);
      };
      detailsTimer = setTimeout(tick, 0);
    }

    function stopDetails() {
      clearTimeout(detailsTimer);
      detailsTimer = null;
    }

    const dash = "—";
    const num = (x, digits = 0) => (x === null || x === undefined || Number.isNaN(x) ? dash : x.toFixed(digits));
    const kbps = (x) => (x === null || x === undefined ? dash : t("ld_kbps", { n: Math.round(x) }));
    const ms = (x) => t("ld_ms", { n: num(x, 0) });
    const fps = (x) => t("ld_fps_value", { n: num(x, 0) });
    const size = (w, h) => (w && h ? `${w}×${h}` : dash);

    function row(table, label, value) {
      const tr = table.insertRow();
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = label;
      tr.append(th);
      tr.insertCell().textContent = value;
    }

    function renderDetails(d) {
      const body = $("link-details-body");
      const parts = [];
      const ids = Object.keys(S.participants).filter((id) => d.participants[id]);
      if (!ids.length && !d.outbound.layers.length) {
        const p = document.createElement("p");
        p.className = "muted";
        p.textContent = t("ld_waiting");
        parts.push(p);
      }
      for (const pid of ids) {
        const x = d.participants[pid];
        const table = document.createElement("table");
        table.className = "ld-table";
        table.dataset.pid = pid;
        table.createCaption().textContent = `${x.name} · ${roleName(x.role)}`;
        row(table, t("ld_link"), x.link ? t(`link_${x.link}`) : dash);
        row(table, t("ld_video"), x.video ? t(`ld_video_${x.video}`) : x.link ? t("ld_video_none") : dash);
        row(table, t("ld_resolution"), size(x.frameWidth, x.frameHeight));
        row(table, t("ld_fps"), fps(x.framesPerSecond));
        row(table, t("ld_bitrate"), kbps(x.videoKbps));
        row(table, t("ld_lost"), `${x.videoPacketsLost} / ${x.audioPacketsLost}`);
        row(table, t("ld_jitter"), `${ms(x.videoJitterMs)} / ${ms(x.audioJitterMs)}`);
        row(table, t("ld_concealed"), x.concealmentRatio === null ? dash : `${(x.concealmentRatio * 100).toFixed(1)} %`);
        parts.push(table);
      }
      const sent = document.createElement("table");
      sent.className = "ld-table ld-sent";
      sent.createCaption().textContent = t("ld_sent");
      row(sent, t("ld_available"), kbps(d.outbound.availableOutgoingKbps));
      for (const [i, v] of d.outbound.layers.entries()) {
        const name = `${t("ld_layer")} ${v.rid ?? i + 1}`;
        const limit = t(`ld_limit_${["none", "cpu", "bandwidth"].includes(v.qualityLimitationReason) ? v.qualityLimitationReason : "other"}`);
        const value = v.active ? `${size(v.frameWidth, v.frameHeight)} · ${fps(v.framesPerSecond)} · ${kbps(v.kbps)} · ${t("ld_limit")}: ${limit}` : dash;
        row(sent, name, value);
      }
      if (!d.outbound.layers.length) row(sent, t("ld_layer"), t("ld_nothing_sent"));
      parts.push(sent);
      body.replaceChildren(...parts);
      body.dataset.at = String(d.at); // when these figures were taken (tests, support)
    }

    function setHidden(el, hidden) {
      if (el.hidden !== hidden) el.hidden = hidden;
    }

    function setData(el, key, value) {
      if (el.dataset[key] !== value) el.dataset[key] = value; // no mutation for the same value
    }

    function setText(el, text) {
      if (el.textContent !== text) el.textContent = text; // unchanged words are not said again
    }

    const markup = new WeakMap(); // element -> the markup last put in it

    function setHtml(el, html) {
      if (markup.get(el) !== html) {
        el.innerHTML = html;
        markup.set(el, html);
      }
    }

    $("link-details").addEventListener("toggle", () => {
      if ($("link-details").open) startDetails();
      else stopDetails();
    });

    return { render, decorateTile, details };
  }

  window.SB_Link = Object.freeze({ attach });
})();

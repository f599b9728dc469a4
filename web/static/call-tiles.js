/* Seoulbridge call page: the participant tiles.
 *
 * The grid of the others' tiles (#grid, from the #tile-template: video or
 * initials, name, role, muted icon, the counselor's two-step Remove), sorted
 * counselor, interpreter, resident, admin, then by name; the hidden <audio>
 * elements that play their sound (#audio-sinks); this device's own tile
 * (#self-tile), moved beside the panels on wide screens; the "speaking" ring and
 * the first decoded frame per participant (state.firstFrameBy, state.firstFrameAt).
 *
 * Plain script: defines window.SB_Tiles. call.js calls
 * SB_Tiles.attach({state, send, t, roleName, canModerate, log, decorate}) once and gets
 * {render, renderSelf, setRemote, forget, showStats, ICONS}: render() after the
 * participants (state.participants) changed; renderSelf(audioOff, videoOff) for
 * the own tile; setRemote(tracks) with the peer's participant id -> {audio, video}
 * tracks; forget(id) when someone left; showStats(stats) with each stats() result.
 * ICONS are the microphone and camera icons (also used by the device buttons).
 * decorate(el, p), if given, is called after each remote tile is rendered (call-link.js
 * adds the connection quality).
 */
(function () {
  "use strict";

  const ICONS = {
    micOff:
      '<svg class="mic-off" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><rect x="9" y="3" width="6" height="11" rx="3" fill="currentColor"/><path d="M5.5 11a6.5 6.5 0 0 0 13 0M12 17.5V21" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"/><path d="M3.5 3.5l17 17" stroke="currentColor" stroke-width="2.6" stroke-linecap="round"/></svg>',
    micOn:
      '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><rect x="9" y="3" width="6" height="11" rx="3" fill="currentColor"/><path d="M5.5 11a6.5 6.5 0 0 0 13 0M12 17.5V21" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>',
    camOn:
      '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M3 7h11v10H3zM14 10.5 20 7v10l-6-3.5" fill="currentColor" stroke="currentColor" stroke-width="1.5" stroke-linejoin="round"/></svg>',
    camOff:
      '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M3 7h11v10H3zM14 10.5 20 7v10l-6-3.5" fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round"/><path d="M3 3l18 18" stroke="currentColor" stroke-width="2.4" stroke-linecap="round"/></svg>',
  };

  function initials(name) {
    const parts = String(name || "?").trim().split(/\s+/);
    const chars = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : Array.from(parts[0]).slice(0, 2).join("");
    return chars.toUpperCase();
  }

  function escapeAttr(s) {
    return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  }

  function attach(opts) {
    const S = opts.state;
    const { send, t, roleName, canModerate, log, decorate } = opts;
    const $ = (id) => document.getElementById(id);
    const remote = {}; // participant id -> {video: MediaStreamTrack|null, audio: MediaStreamTrack|null}

    function renderTiles() {
      if (S.screen !== "call") return;
      const grid = $("grid");
      const ids = Object.keys(S.participants);
      for (const el of Array.from(grid.children)) {
        if (!S.participants[el.dataset.pid]) {
          const v = el.querySelector("video");
          v.srcObject = null;
          el.remove();
        }
      }
      for (const id of ids) {
        let el = grid.querySelector(`[data-pid="${CSS.escape(id)}"]`);
        if (!el) {
          el = $("tile-template").content.firstElementChild.cloneNode(true);
          el.dataset.pid = id;
          grid.append(el);
          const rm = el.querySelector(".tile-remove");
          rm.addEventListener("click", () => {
            // Two steps, so that a stray tap does not throw someone out.
            if (rm.dataset.armed === "1") {
              send({ type: "remove", participant_id: id, reason: "" });
              return;
            }
            rm.dataset.armed = "1";
            rm.textContent = t("remove_confirm");
            clearTimeout(rm.disarm);
            rm.disarm = setTimeout(() => {
              rm.dataset.armed = "";
              renderTiles();
            }, 4000);
          });
          watchFirstFrame(el.querySelector("video"), id);
        }
        renderTile(el, S.participants[id]);
      }
      // Order: counselor, interpreter, resident, admin, observer, then by name.
      const order = { counselor: 0, interpreter: 1, resident: 2, admin: 3, observer: 4 };
      const sorted = Array.from(grid.children).sort((a, b) => {
        const pa = S.participants[a.dataset.pid];
        const pb = S.participants[b.dataset.pid];
        return (order[pa.role] - order[pb.role]) || pa.name.localeCompare(pb.name);
      });
      sorted.forEach((el, i) => {
        if (grid.children[i] !== el) grid.insertBefore(el, grid.children[i]);
      });
      $("grid-empty").hidden = ids.length > 0;
      document.querySelector(".stage").classList.toggle("solo", ids.length === 0);
      placeSelfTile();
      renderAudioSinks();
    }

    function renderTile(el, p) {
      const media = remote[p.id] || {};
      const video = el.querySelector("video");
      const vtrack = media.video || null;
      const current = video.srcObject ? video.srcObject.getVideoTracks()[0] : null;
      if (current !== vtrack) {
        video.srcObject = vtrack ? new MediaStream([vtrack]) : null;
        if (vtrack) {
          video.play().catch(() => {});
          vtrack.onmute = vtrack.onunmute = () => renderTiles();
        }
      }
      const noVideo = !vtrack || p.video_muted || vtrack.muted;
      el.classList.toggle("no-video", noVideo);
      el.querySelector(".tile-avatar span").textContent = initials(p.name);
      el.querySelector(".tile-name").textContent = p.name;
      const role = el.querySelector(".tile-role");
      role.textContent = roleName(p.role);
      role.dataset.role = p.role;
      const icons = [];
      if (p.audio_muted) icons.push(ICONS.micOff.replace("<svg ", `<svg role="img" aria-label="${escapeAttr(t("muted"))}" `).replace(' aria-hidden="true"', ""));
      el.querySelector(".tile-icons").innerHTML = icons.join("");
      el.setAttribute("aria-label", `${p.name}, ${roleName(p.role)}${p.audio_muted ? `, ${t("muted")}` : ""}${p.video_muted ? `, ${t("camera_is_off")}` : ""}`);
      const rm = el.querySelector(".tile-remove");
      rm.hidden = !canModerate();
      rm.textContent = t(rm.dataset.armed === "1" ? "remove_confirm" : "remove");
      rm.setAttribute("aria-label", t("remove_label", { name: p.name }));
      if (decorate) decorate(el, p); // connection quality (call-link.js)
    }

    function renderAudioSinks() {
      const box = $("audio-sinks");
      for (const el of Array.from(box.children)) {
        const media = remote[el.dataset.pid];
        if (!media || !media.audio || !S.participants[el.dataset.pid]) {
          el.srcObject = null;
          el.remove();
        }
      }
      for (const [pid, media] of Object.entries(remote)) {
        if (!media.audio || !S.participants[pid]) continue;
        let el = box.querySelector(`audio[data-pid="${CSS.escape(pid)}"]`);
        if (!el) {
          el = document.createElement("audio");
          el.dataset.pid = pid;
          el.autoplay = true;
          box.append(el);
        }
        const current = el.srcObject ? el.srcObject.getAudioTracks()[0] : null;
        if (current !== media.audio) {
          el.srcObject = new MediaStream([media.audio]);
          el.play().then(
            () => {
              $("sound-blocked").hidden = true;
            },
            (e) => {
              log("audio play blocked", e.name);
              if (e.name === "NotAllowedError") $("sound-blocked").hidden = false;
            },
          );
        }
      }
    }

    function watchFirstFrame(video, pid) {
      if (typeof video.requestVideoFrameCallback !== "function") return;
      const onFrame = () => {
        if (S.firstFrameBy[pid] === undefined) markFirstFrame(pid);
      };
      const arm = () => {
        if (S.firstFrameBy[pid] === undefined && video.isConnected) video.requestVideoFrameCallback(onFrame);
      };
      video.addEventListener("loadedmetadata", arm);
      arm();
    }

    function markFirstFrame(pid) {
      const now = performance.now();
      S.firstFrameBy[pid] = Math.round(now);
      if (S.firstFrameAt === null) {
        S.firstFrameAt = Math.round(now);
        log("first remote frame", pid, `${S.firstFrameAt} ms after page load`);
      }
    }

    const wide = window.matchMedia("(min-width: 68.76em)");

    /** Self view: beside the panels on wide screens, under the others' tiles otherwise. */
    function placeSelfTile() {
      const slot = $(wide.matches ? "self-slot-side" : "self-slot-stage");
      const tile = $("self-tile");
      if (tile.parentElement !== slot) {
        slot.append(tile);
        const v = $("self-video");
        if (v.srcObject) v.play().catch(() => {});
      }
    }

    /** This device's own tile. */
    function renderSelf(audioOff, videoOff) {
      const self = $("self-tile");
      self.classList.toggle("no-video", videoOff);
      if (S.you) {
        self.querySelector(".tile-name").textContent = `${S.you.name} ${t("you_suffix")}`;
        self.querySelector(".tile-avatar span").textContent = initials(S.you.name);
        self.setAttribute("aria-label", `${S.you.name} ${t("you_suffix")}`);
      }
      self.querySelector(".tile-icons").innerHTML = audioOff ? ICONS.micOff : "";
    }

    /** The peer's remote tracks (participant id -> {audio, video}) changed. */
    function setRemote(next) {
      for (const pid of Object.keys(remote)) if (!next[pid]) delete remote[pid];
      Object.assign(remote, next);
      renderTiles();
    }

    function forget(pid) {
      delete remote[pid];
      renderTiles();
    }

    /** A stats() result: first frames and who is speaking. */
    function showStats(st) {
      for (const [pid, s] of Object.entries(st)) {
        if (s.framesDecoded > 0 && S.firstFrameBy[pid] === undefined) markFirstFrame(pid);
        const tile = document.querySelector(`#grid [data-pid="${CSS.escape(pid)}"]`);
        const p = S.participants[pid];
        if (tile && p) tile.classList.toggle("speaking", !p.audio_muted && s.audioLevel > 0.04);
      }
    }

    wide.addEventListener("change", placeSelfTile);

    return { render: renderTiles, renderSelf, setRemote, forget, showStats, ICONS };
  }

  window.SB_Tiles = Object.freeze({ attach });
})();

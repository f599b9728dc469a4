/* Seoulbridge resident booking page: topic, language, free slots in local time, book,
 * receive the link; or join the walk-in queue. Talks to /api/topics, /api/availability,
 * /api/bookings and /api/queue. UI strings in ko, en, ja, zh, ru. */
(function () {
  "use strict";

  const STRINGS = {
    en: {
      change: "Change time",
      open_link: "Open the consultation link",
      language: "Language", title: "Book a video consultation",
      lead: "Talk with a counselor at the Seoul service center by video. An interpreter joins if you need one.",
      tab_book: "Book a time", tab_now: "Talk now (walk-in)", topic: "Topic",
      spoken: "Language you speak", need_interp: "I need an interpreter", timezone: "Your time zone",
      show_slots: "Show free times", name: "Your name", join_queue: "Wait for the next counselor",
      pick_slot: "Choose a time", tz_note: "Times are shown in {tz}. Seoul time in small print.",
      your_details: "Your details", contact: "E-mail or phone (with country code)",
      country: "Country where you live (2 letters, e.g. JP)", book: "Book",
      booked: "Your consultation is booked",
      link_info: "Open this link at the time of your consultation. It works from 15 minutes before.",
      copy: "Copy link", copied: "Copied", add_calendar: "Add to calendar (.ics)", cancel: "Cancel booking",
      cancelled: "This booking is cancelled.", confirm_cancel: "Cancel this booking?",
      keep_page: "Keep this page's address: it lets you see or cancel your booking.",
      in_queue: "You are in the queue", position: "Your place: {n}",
      wait: "Estimated wait: about {m} min", wait_unknown: "A counselor will be with you as soon as one is free.",
      queue_keep: "Keep this page open. If you lose connection, you keep your place for 2 minutes.",
      enter_now: "Enter the consultation", leave_queue: "Leave the queue", matched: "A counselor is ready for you.",
      left: "You have left the queue.", expired: "Your place expired. Please join again.",
      no_slots: "No free times in the next two weeks. Please try another topic or the walk-in queue.",
      seoul: "Seoul", network: "The server could not be reached. Check your connection and try again.",
    },
    ko: {
      change: "시간 변경",
      open_link: "상담 링크 열기",
      language: "언어", title: "영상 상담 예약",
      lead: "서울 민원센터 상담사와 화상으로 상담하세요. 필요하면 통역사가 함께합니다.",
      tab_book: "시간 예약", tab_now: "지금 상담(대기열)", topic: "상담 분야",
      spoken: "사용하는 언어", need_interp: "통역이 필요합니다", timezone: "현지 시간대",
      show_slots: "예약 가능한 시간 보기", name: "성명", join_queue: "다음 상담사 기다리기",
      pick_slot: "시간 선택", tz_note: "시간은 {tz} 기준입니다. 작은 글씨는 서울 시간입니다.",
      your_details: "신청인 정보", contact: "이메일 또는 전화번호(국가번호 포함)",
      country: "거주 국가(영문 2자, 예: JP)", book: "예약하기",
      booked: "상담이 예약되었습니다",
      link_info: "상담 시간에 이 링크를 여세요. 시작 15분 전부터 열립니다.",
      copy: "링크 복사", copied: "복사됨", add_calendar: "캘린더에 추가(.ics)", cancel: "예약 취소",
      cancelled: "취소된 예약입니다.", confirm_cancel: "이 예약을 취소할까요?",
      keep_page: "이 페이지 주소를 보관하세요. 예약 확인과 취소에 필요합니다.",
      in_queue: "대기열에 들어왔습니다", position: "내 순서: {n}번째",
      wait: "예상 대기 시간: 약 {m}분", wait_unknown: "상담사가 준비되는 대로 연결해 드립니다.",
      queue_keep: "이 페이지를 열어 두세요. 연결이 끊겨도 2분 동안 순서가 유지됩니다.",
      enter_now: "상담 입장", leave_queue: "대기 취소", matched: "상담사가 준비되었습니다.",
      left: "대기열에서 나왔습니다.", expired: "대기 순서가 만료되었습니다. 다시 신청해 주세요.",
      no_slots: "앞으로 2주간 예약 가능한 시간이 없습니다. 다른 분야나 대기열을 이용해 주세요.",
      seoul: "서울", network: "서버에 연결할 수 없습니다. 인터넷 연결을 확인하고 다시 시도하세요.",
    },
    ja: {
      change: "時間を変更",
      open_link: "相談リンクを開く",
      language: "言語", title: "ビデオ相談の予約",
      lead: "ソウルの民願センターの相談員とビデオで相談できます。必要なら通訳が同席します。",
      tab_book: "日時を予約", tab_now: "今すぐ相談（順番待ち）", topic: "相談分野",
      spoken: "話す言語", need_interp: "通訳が必要です", timezone: "お住まいのタイムゾーン",
      show_slots: "空いている時間を見る", name: "氏名", join_queue: "次の相談員を待つ",
      pick_slot: "時間を選ぶ", tz_note: "時刻は{tz}で表示しています。小さい文字はソウル時間です。",
      your_details: "ご本人の情報", contact: "メールまたは電話番号（国番号付き）",
      country: "お住まいの国（英字2文字、例: JP）", book: "予約する",
      booked: "相談の予約が完了しました",
      link_info: "相談の時間にこのリンクを開いてください。開始15分前から使えます。",
      copy: "リンクをコピー", copied: "コピーしました", add_calendar: "カレンダーに追加（.ics）", cancel: "予約を取り消す",
      cancelled: "この予約は取り消されました。", confirm_cancel: "この予約を取り消しますか？",
      keep_page: "このページのアドレスを保存してください。予約の確認や取消に使います。",
      in_queue: "順番待ちに入りました", position: "あなたの順番: {n}番目",
      wait: "待ち時間の目安: 約{m}分", wait_unknown: "相談員の手が空き次第おつなぎします。",
      queue_keep: "このページを開いたままにしてください。接続が切れても2分間は順番が保たれます。",
      enter_now: "相談に入る", leave_queue: "順番待ちをやめる", matched: "相談員の準備ができました。",
      left: "順番待ちをやめました。", expired: "順番が無効になりました。もう一度お申し込みください。",
      no_slots: "今後2週間に空きがありません。別の分野か順番待ちをご利用ください。",
      seoul: "ソウル", network: "サーバーに接続できません。接続を確認してもう一度お試しください。",
    },
    zh: {
      change: "更改时间",
      open_link: "打开咨询链接",
      language: "语言", title: "预约视频咨询",
      lead: "通过视频与首尔民愿中心的咨询员交谈。如有需要，会有口译员加入。",
      tab_book: "预约时间", tab_now: "立即咨询（排队）", topic: "咨询类别",
      spoken: "您使用的语言", need_interp: "我需要口译", timezone: "您所在的时区",
      show_slots: "查看可预约时间", name: "姓名", join_queue: "等待下一位咨询员",
      pick_slot: "选择时间", tz_note: "时间按{tz}显示。小字为首尔时间。",
      your_details: "您的信息", contact: "电子邮箱或电话（含国家代码）",
      country: "居住国家（两个字母，如 JP）", book: "预约",
      booked: "您的咨询已预约成功",
      link_info: "请在咨询时间打开此链接。开始前15分钟起可用。",
      copy: "复制链接", copied: "已复制", add_calendar: "添加到日历（.ics）", cancel: "取消预约",
      cancelled: "此预约已取消。", confirm_cancel: "确定取消此预约吗？",
      keep_page: "请保存本页地址，用于查看或取消预约。",
      in_queue: "您已进入排队", position: "您的位置：第{n}位",
      wait: "预计等待：约{m}分钟", wait_unknown: "咨询员空闲后会立即为您接通。",
      queue_keep: "请保持本页打开。断线后2分钟内保留您的位置。",
      enter_now: "进入咨询", leave_queue: "退出排队", matched: "咨询员已准备好。",
      left: "您已退出排队。", expired: "您的排队已过期，请重新加入。",
      no_slots: "未来两周没有可预约时间。请选择其他类别或排队咨询。",
      seoul: "首尔", network: "无法连接服务器。请检查网络后重试。",
    },
    ru: {
      change: "Изменить время",
      open_link: "Открыть ссылку консультации",
      language: "Язык", title: "Запись на видеоконсультацию",
      lead: "Поговорите по видео с консультантом сервисного центра в Сеуле. При необходимости подключится переводчик.",
      tab_book: "Записаться", tab_now: "Сейчас (живая очередь)", topic: "Тема",
      spoken: "Ваш язык", need_interp: "Мне нужен переводчик", timezone: "Ваш часовой пояс",
      show_slots: "Показать свободное время", name: "Ваше имя", join_queue: "Ждать свободного консультанта",
      pick_slot: "Выберите время", tz_note: "Время указано для {tz}. Мелким шрифтом — время Сеула.",
      your_details: "Ваши данные", contact: "E-mail или телефон (с кодом страны)",
      country: "Страна проживания (2 буквы, напр. JP)", book: "Записаться",
      booked: "Вы записаны на консультацию",
      link_info: "Откройте эту ссылку в назначенное время. Она работает за 15 минут до начала.",
      copy: "Копировать ссылку", copied: "Скопировано", add_calendar: "В календарь (.ics)", cancel: "Отменить запись",
      cancelled: "Эта запись отменена.", confirm_cancel: "Отменить эту запись?",
      keep_page: "Сохраните адрес этой страницы: по нему можно посмотреть или отменить запись.",
      in_queue: "Вы в очереди", position: "Ваше место: {n}",
      wait: "Примерное ожидание: около {m} мин", wait_unknown: "Консультант подключится, как только освободится.",
      queue_keep: "Не закрывайте страницу. При потере связи место сохраняется 2 минуты.",
      enter_now: "Войти в консультацию", leave_queue: "Выйти из очереди", matched: "Консультант готов вас принять.",
      left: "Вы вышли из очереди.", expired: "Ваше место в очереди истекло. Встаньте в очередь снова.",
      no_slots: "В ближайшие две недели нет свободного времени. Выберите другую тему или живую очередь.",
      seoul: "Сеул", network: "Сервер недоступен. Проверьте подключение и попробуйте снова.",
    },
  };
  const LANGS = window.SB_LANGUAGES.codes; // from /languages.js (kernel/languages.py)
  const LOCALES = { ko: "ko-KR", en: "en-GB", ja: "ja-JP", zh: "zh-CN", ru: "ru-RU" };
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);

  let lang = pickLang();
  let topics = [];
  let chosen = null;
  let booking = null;
  let ticket = null;
  let pollTimer = null;

  function pickLang() {
    const asked = params.get("lang");
    if (asked && LANGS.includes(asked)) return asked;
    const saved = localStorage.getItem("sb-lang");
    if (saved && LANGS.includes(saved)) return saved;
    for (const l of navigator.languages || []) {
      const short = l.slice(0, 2).toLowerCase();
      if (LANGS.includes(short)) return short;
    }
    return "en";
  }

  function t(key, vars) {
    let text = (STRINGS[lang] && STRINGS[lang][key]) || STRINGS.en[key] || key;
    for (const [k, v] of Object.entries(vars || {})) text = text.replace("{" + k + "}", v);
    return text;
  }

  function applyLang() {
    document.documentElement.lang = lang;
    $("ui-lang").value = lang;
    document.title = "Seoulbridge · " + t("title");
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    fillTopics();
    if (chosen) renderSlots(chosen.availability);
    if (booking) renderBooking();
  }

  function showError(message) {
    const box = $("error");
    box.textContent = message || "";
    box.hidden = !message;
    if (message) box.scrollIntoView({ behavior: "smooth", block: "center" });
  }

  async function api(method, url, body) {
    let resp;
    try {
      resp = await fetch(url, {
        method,
        headers: body ? { "Content-Type": "application/json" } : {},
        body: body ? JSON.stringify(body) : undefined,
      });
    } catch (e) {
      throw new Error(t("network"));
    }
    const data = resp.status === 204 ? null : await resp.json().catch(() => null);
    if (!resp.ok) throw new Error((data && data.error && data.error.message) || resp.statusText);
    return data;
  }

  function fmt(iso, zone, opts) {
    return new Intl.DateTimeFormat(LOCALES[lang], { timeZone: zone, ...opts }).format(new Date(iso));
  }

  function fillTopics() {
    const sel = $("topic");
    const current = sel.value;
    sel.textContent = "";
    for (const topic of topics) {
      const opt = document.createElement("option");
      opt.value = topic.id;
      opt.textContent = topic.names[lang] || topic.names.en;
      sel.append(opt);
    }
    if (current) sel.value = current;
  }

  function fillZones() {
    const here = Intl.DateTimeFormat().resolvedOptions().timeZone || "Asia/Seoul";
    $("tz").value = params.get("tz") || here;
    const list = $("tz-list");
    const zones = Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : [here];
    for (const z of zones) {
      const opt = document.createElement("option");
      opt.value = z;
      list.append(opt);
    }
  }

  function setMode(now) {
    document.body.classList.toggle("mode-now", now);
    $("tab-book").setAttribute("aria-selected", String(!now));
    $("tab-now").setAttribute("aria-selected", String(now));
    $("step-slots").hidden = true;
    $("step-details").hidden = true;
    showError("");
  }

  async function showSlots() {
    showError("");
    const q = new URLSearchParams({
      topic: $("topic").value, language: $("spoken").value, timezone: $("tz").value.trim(),
      needs_interpreter: String($("interp").checked), days: "14",
    });
    try {
      const availability = await api("GET", "/api/availability?" + q);
      chosen = { availability, slot: null };
      renderSlots(availability);
      $("step-slots").hidden = false;
      $("step-details").hidden = true;
      $("step-slots").scrollIntoView({ behavior: "smooth" });
    } catch (e) {
      showError(e.message);
    }
  }

  function renderSlots(av) {
    const zone = av.timezone;
    $("tz-note").textContent = t("tz_note", { tz: zone });
    const box = $("slots");
    box.textContent = "";
    if (!av.slots.length) {
      box.textContent = t("no_slots");
      return;
    }
    let day = null;
    let grid = null;
    for (const slot of av.slots) {
      const label = fmt(slot.start, zone, { weekday: "long", month: "long", day: "numeric" });
      if (label !== day) {
        day = label;
        const h = document.createElement("div");
        h.className = "day";
        h.textContent = label;
        grid = document.createElement("div");
        grid.className = "slots";
        box.append(h, grid);
      }
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = fmt(slot.start, zone, { hour: "2-digit", minute: "2-digit" });
      const small = document.createElement("small");
      small.textContent = t("seoul") + " " + fmt(slot.start, "Asia/Seoul", { hour: "2-digit", minute: "2-digit" });
      b.append(small);
      b.addEventListener("click", () => pickSlot(slot));
      grid.append(b);
    }
  }

  function pickSlot(slot) {
    if (booking) return moveBooking(slot);
    chosen.slot = slot;
    const zone = chosen.availability.timezone;
    $("chosen").textContent = fmt(slot.start, zone, { dateStyle: "full", timeStyle: "short" });
    $("step-details").hidden = false;
    $("name").focus();
  }

  async function submitBooking(ev) {
    ev.preventDefault();
    showError("");
    const body = {
      name: $("name").value, contact: $("contact").value, country: $("country").value,
      timezone: chosen.availability.timezone, language: $("spoken").value,
      topic: $("topic").value, slot_start: chosen.slot.start, needs_interpreter: $("interp").checked,
    };
    try {
      booking = await api("POST", "/api/bookings", body);
      localStorage.setItem("sb-country", body.country);
      history.replaceState(null, "", `/book?booking=${booking.id}&key=${encodeURIComponent(booking.manage_key)}&lang=${lang}`);
      renderBooking();
    } catch (e) {
      showError(e.message);
      if (/taken|free/i.test(e.message)) showSlots();
    }
  }

  function renderBooking() {
    for (const id of ["step-choose", "step-slots", "step-details"]) $(id).hidden = true;
    document.querySelector(".tabs").hidden = true;
    $("step-done").hidden = false;
    const when = fmt(booking.start, booking.timezone, { dateStyle: "full", timeStyle: "short" });
    $("done-when").textContent = booking.state === "cancelled" ? t("cancelled") : when;
    $("join-link").value = booking.join_url || "";
    $("join-open").href = booking.join_url || "#";
    $("ics").href = booking.ics_url.replace(/^https?:\/\/[^/]+/, "");
    const live = booking.state === "confirmed";
    for (const id of ["copy", "cancel", "change", "join-open", "join-box"]) $(id).hidden = !live;
  }

  async function showMoveSlots() {
    showError("");
    const q = new URLSearchParams({
      topic: booking.topic, language: booking.language, timezone: booking.timezone,
      needs_interpreter: String(Boolean(booking.interpreter)), days: "14",
    });
    try {
      const availability = await api("GET", "/api/availability?" + q);
      chosen = { availability, slot: null };
      renderSlots(availability);
      $("step-slots").hidden = false;
      $("step-slots").scrollIntoView({ behavior: "smooth" });
    } catch (e) {
      showError(e.message);
    }
  }

  async function moveBooking(slot) {
    showError("");
    const key = params.get("key") || booking.manage_key;
    try {
      booking = await api("POST", `/api/bookings/${booking.id}/reschedule?key=${encodeURIComponent(key)}`, { slot_start: slot.start });
      chosen = null;
      renderBooking();
      $("step-done").scrollIntoView({ behavior: "smooth" });
    } catch (e) {
      showError(e.message);
    }
  }

  async function loadBooking() {
    const key = params.get("key");
    try {
      booking = await api("GET", `/api/bookings/${encodeURIComponent(params.get("booking"))}?key=${encodeURIComponent(key)}`);
      renderBooking();
    } catch (e) {
      showError(e.message);
    }
  }

  async function cancelBooking() {
    if (!confirm(t("confirm_cancel"))) return;
    try {
      booking = await api("POST", `/api/bookings/${booking.id}/cancel?key=${encodeURIComponent(params.get("key") || booking.manage_key)}`);
      renderBooking();
    } catch (e) {
      showError(e.message);
    }
  }

  async function joinQueue() {
    showError("");
    try {
      ticket = await api("POST", "/api/queue", {
        name: $("q-name").value, topic: $("topic").value, language: $("spoken").value,
        needs_interpreter: $("interp").checked,
      });
      sessionStorage.setItem("sb-ticket", JSON.stringify({ id: ticket.id, key: ticket.ticket_key }));
      $("step-choose").hidden = true;
      document.querySelector(".tabs").hidden = true;
      $("step-queue").hidden = false;
      renderTicket(ticket);
      pollTimer = setInterval(pollTicket, 4000);
    } catch (e) {
      showError(e.message);
    }
  }

  async function pollTicket() {
    const saved = JSON.parse(sessionStorage.getItem("sb-ticket") || "null");
    if (!saved) return;
    try {
      const view = await api("GET", `/api/queue/${saved.id}?key=${encodeURIComponent(saved.key)}`);
      showError("");
      renderTicket(view);
    } catch (e) {
      showError(e.message);
    }
  }

  function renderTicket(view) {
    const done = ["left", "expired", "done"].includes(view.state);
    if (view.state === "waiting") {
      $("q-position").textContent = t("position", { n: view.position });
      $("q-wait").textContent = view.estimated_wait_s == null
        ? t("wait_unknown") : t("wait", { m: Math.max(1, Math.round(view.estimated_wait_s / 60)) });
    } else if (view.state === "matched") {
      $("q-position").textContent = t("matched");
      $("q-wait").textContent = "";
      if (view.join_url) {
        $("q-link").href = view.join_url;
        $("q-ready").hidden = false;
      }
    } else {
      $("q-position").textContent = t(view.state === "expired" ? "expired" : "left");
      $("q-wait").textContent = "";
    }
    $("q-leave").hidden = done || view.state === "matched";
    if (done) {
      clearInterval(pollTimer);
      sessionStorage.removeItem("sb-ticket");
    }
  }

  async function leaveQueue() {
    const saved = JSON.parse(sessionStorage.getItem("sb-ticket") || "null");
    if (!saved) return;
    try {
      renderTicket(await api("DELETE", `/api/queue/${saved.id}?key=${encodeURIComponent(saved.key)}`));
    } catch (e) {
      showError(e.message);
    }
  }

  function autoInterpreter() {
    $("interp").checked = $("spoken").value !== "ko";
  }

  async function init() {
    $("ui-lang").addEventListener("change", (e) => {
      lang = e.target.value;
      localStorage.setItem("sb-lang", lang);
      applyLang();
    });
    $("tab-book").addEventListener("click", () => setMode(false));
    $("tab-now").addEventListener("click", () => setMode(true));
    $("show").addEventListener("click", showSlots);
    $("spoken").addEventListener("change", autoInterpreter);
    $("details").addEventListener("submit", submitBooking);
    $("copy").addEventListener("click", async () => {
      await navigator.clipboard.writeText(booking.join_url);
      $("copy").textContent = t("copied");
    });
    $("cancel").addEventListener("click", cancelBooking);
    $("change").addEventListener("click", showMoveSlots);
    $("q-join").addEventListener("click", joinQueue);
    $("q-leave").addEventListener("click", leaveQueue);
    $("spoken").value = lang;
    autoInterpreter();
    fillZones();
    const region = (navigator.language.split("-")[1] || "").toUpperCase();
    $("country").value = localStorage.getItem("sb-country") || (region.length === 2 ? region : "");
    applyLang();
    if (params.get("booking") && params.get("key")) return loadBooking();
    if (params.get("mode") === "now") setMode(true);
    try {
      topics = await api("GET", "/api/topics");
      fillTopics();
      if (params.get("topic")) $("topic").value = params.get("topic");
    } catch (e) {
      showError(e.message);
    }
    if (sessionStorage.getItem("sb-ticket")) {
      $("step-choose").hidden = true;
      document.querySelector(".tabs").hidden = true;
      $("step-queue").hidden = false;
      pollTicket();
      pollTimer = setInterval(pollTicket, 4000);
    }
  }

  init();
})();

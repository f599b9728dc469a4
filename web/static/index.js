/* Seoulbridge start page: where residents, counselors and admins go; five languages. */
(function () {
  "use strict";

  const I18N = window.SB_I18N;
  let lang = I18N.pageLanguage("ko");
  const apply = () => {
    I18N.applyStrings(lang);
    document.title = `Seoulbridge · ${I18N.t(lang, "index_lead")}`;
    for (const a of document.querySelectorAll(".entries a")) {
      const url = new URL(a.href);
      url.searchParams.set("lang", lang);
      a.href = url.pathname + url.search;
    }
  };
  I18N.fillLanguageSelect(document.getElementById("ui-lang"), lang, (next) => {
    lang = next;
    apply();
  });
  apply();
})();

// crnn-ocr web UI: choose / drop / paste an image, POST it to /api/ocr, show lines and boxes.
// Recognised text is only ever inserted with textContent, never parsed as HTML.
"use strict";

const LOW_CONFIDENCE = 0.5;
const KEY_STORE = "crnn-ocr-api-key";
const SVG_NS = "http://www.w3.org/2000/svg";

const I18N = {
  zh: {
    title: "中英文文字识别", subtitle: "CRNN 模型 · CPU 推理 · 图片不会被保存", inputTitle: "图片",
    drop: "拖放、粘贴或点击选择图片", dropHint: "PNG · JPEG · WebP · BMP · GIF · TIFF，最大 20 MB",
    options: "高级选项", optDet: "文字检测", detAuto: "自动", detNone: "整张图为一行", optMin: "最低置信度",
    optAlphabet: "识别字符", alphaAll: "全部（中英文）", alphaAscii: "仅英文、数字和符号", alphaDigits: "仅数字",
    optLexicon: "英文词典校正",
    optPre: "图像增强", preClahe: "对比度增强", preDenoise: "去噪", preThresh: "自适应二值化",
    run: "开始高精度识别", running: "识别中…", results: "识别结果",
    placeholder: "选择图片后点击「开始高精度识别」，识别出的文字行会显示在这里。",
    noLines: "没有识别到文字。", copy: "复制全部", copied: "已复制", dlTxt: "下载 TXT", dlJson: "下载 JSON",
    keyTitle: "需要 API 密钥", keyText: "此服务需要 API 密钥。密钥只保存在本页会话中。", ok: "确定", cancel: "取消",
    time: "耗时", lines: "行数", size: "尺寸", low: "置信度低，请核对", notImage: "这不是图片文件。",
    network: "无法连接到服务器。", busy: "服务器繁忙，请 {s} 秒后重试。", keyNeeded: "需要有效的 API 密钥。",
    failed: "识别失败", langButton: "EN",
  },
  en: {
    title: "Chinese & English OCR", subtitle: "CRNN model · CPU inference · images are not stored", inputTitle: "Image",
    drop: "Drop, paste or click to choose an image", dropHint: "PNG · JPEG · WebP · BMP · GIF · TIFF, up to 20 MB",
    options: "Options", optDet: "Text detection", detAuto: "Auto", detNone: "Whole image is one line",
    optAlphabet: "Characters", alphaAll: "All (Chinese and English)", alphaAscii: "English, digits, symbols only",
    alphaDigits: "Digits only", optLexicon: "English dictionary correction",
    optMin: "Minimum confidence", optPre: "Enhancement", preClahe: "Contrast (CLAHE)", preDenoise: "Denoise",
    preThresh: "Adaptive threshold", run: "开始高精度识别 · Recognize", running: "Recognizing…", results: "Results",
    placeholder: "Choose an image and press the button; the recognised lines appear here.",
    noLines: "No text found.", copy: "Copy all", copied: "Copied", dlTxt: "Download TXT", dlJson: "Download JSON",
    keyTitle: "API key required", keyText: "This service needs an API key. It is kept for this page session only.",
    ok: "OK", cancel: "Cancel", time: "time", lines: "lines", size: "size", low: "low confidence, please check",
    notImage: "That is not an image file.", network: "Cannot reach the server.",
    busy: "The server is busy, retry in {s} s.", keyNeeded: "A valid API key is required.", failed: "Recognition failed",
    langButton: "中文",
  },
};

const $ = (id) => document.getElementById(id);
const ui = {
  drop: $("drop"), file: $("file"), dropEmpty: $("dropEmpty"), stage: $("stage"), preview: $("preview"),
  overlay: $("overlay"), fileName: $("fileName"), run: $("run"), error: $("error"), lines: $("lines"),
  placeholder: $("placeholder"), stats: $("stats"), copy: $("copy"), dlTxt: $("dlTxt"), dlJson: $("dlJson"),
  model: $("model"), lang: $("lang"), keyDialog: $("keyDialog"), keyInput: $("keyInput"), keyOk: $("keyOk"),
  keyCancel: $("keyCancel"), optDet: $("optDet"), optMin: $("optMin"), optAlphabet: $("optAlphabet"),
  optLexicon: $("optLexicon"),
};

const state = { file: null, url: null, result: null, lang: "zh", busy: false };

function t(key, vars) {
  let s = (I18N[state.lang] && I18N[state.lang][key]) || I18N.zh[key] || key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace("{" + k + "}", String(v));
  return s;
}

function applyLanguage(lang) {
  state.lang = lang in I18N ? lang : "zh";
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  ui.lang.textContent = t("langButton");
  try { localStorage.setItem("crnn-ocr-lang", state.lang); } catch (e) { /* storage may be disabled */ }
  if (state.busy) ui.run.querySelector("[data-i18n]").textContent = t("running");
  if (state.result) renderResult(state.result);
}

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = !message;
}

function setFile(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith("image/")) { showError(t("notImage")); return; }
  showError("");
  state.file = file;
  if (state.url) URL.revokeObjectURL(state.url);
  state.url = URL.createObjectURL(file);
  ui.preview.src = state.url;
  ui.stage.hidden = false;
  ui.dropEmpty.hidden = true;
  ui.drop.classList.add("has-image");
  ui.fileName.textContent = `${file.name || "pasted image"} · ${(file.size / 1024).toFixed(1)} KB`;
  ui.run.disabled = false;
  clearResult();
}

function clearResult() {
  state.result = null;
  ui.lines.replaceChildren();
  ui.overlay.replaceChildren();
  ui.stats.replaceChildren();
  ui.placeholder.hidden = false;
  ui.placeholder.textContent = t("placeholder");
  for (const b of [ui.copy, ui.dlTxt, ui.dlJson]) b.disabled = true;
}

function options() {
  const params = new URLSearchParams();
  if (ui.optDet.value !== "auto") params.set("det", ui.optDet.value);
  if (ui.optAlphabet.value) params.set("alphabet", ui.optAlphabet.value);
  if (!ui.optLexicon.checked) params.set("lexicon", "false");
  const min = parseFloat(ui.optMin.value);
  if (min > 0 && min <= 1) params.set("min_confidence", String(min));
  const steps = [...document.querySelectorAll("input[name=pre]:checked")].map((c) => c.value);
  if (steps.length) params.set("preprocess", steps.join(","));
  const q = params.toString();
  return q ? "?" + q : "";
}

function askKey() {
  return new Promise((resolve) => {
    ui.keyInput.value = "";
    ui.keyDialog.hidden = false;
    ui.keyInput.focus();
    const done = (value) => {
      ui.keyDialog.hidden = true;
      ui.keyOk.onclick = ui.keyCancel.onclick = ui.keyInput.onkeydown = null;
      resolve(value);
    };
    ui.keyOk.onclick = () => done(ui.keyInput.value.trim() || null);
    ui.keyCancel.onclick = () => done(null);
    ui.keyInput.onkeydown = (e) => {
      if (e.key === "Enter") done(ui.keyInput.value.trim() || null);
      if (e.key === "Escape") done(null);
    };
  });
}

async function post(file) {
  const body = new FormData();
  body.append("image", file, file.name || "image.png");
  const headers = {};
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) headers["Authorization"] = "Bearer " + key;
  return fetch("/api/ocr" + options(), { method: "POST", body, headers });
}

async function recognise() {
  if (!state.file || state.busy) return;
  state.busy = true;
  ui.run.disabled = true;
  ui.run.classList.add("busy");
  ui.run.querySelector("[data-i18n]").textContent = t("running");
  showError("");
  try {
    let res = await post(state.file);
    if (res.status === 401) {
      sessionStorage.removeItem(KEY_STORE);
      const key = await askKey();
      if (key) {
        sessionStorage.setItem(KEY_STORE, key);
        res = await post(state.file);
      }
    }
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      let message = (data && typeof data.error === "string") ? data.error : `HTTP ${res.status}`;
      if (res.status === 503) message = t("busy", { s: res.headers.get("Retry-After") || 1 }) + " " + message;
      if (res.status === 401) message = t("keyNeeded");
      showError(`${t("failed")} (${res.status}): ${message}`);
      return;
    }
    state.result = data;
    renderResult(data);
  } catch (e) {
    showError(t("network"));
  } finally {
    state.busy = false;
    ui.run.disabled = !state.file;
    ui.run.classList.remove("busy");
    ui.run.querySelector("[data-i18n]").textContent = t("run");
  }
}

function stat(label, value) {
  const span = document.createElement("span");
  span.append(label + " ");
  const b = document.createElement("b");
  b.textContent = value;
  span.append(b);
  return span;
}

function highlight(i, on) {
  const li = ui.lines.children[i];
  const poly = ui.overlay.querySelector(`polygon[data-index="${i}"]`);
  if (li) li.classList.toggle("active", on);
  if (poly) poly.classList.toggle("active", on);
}

function renderResult(data) {
  const lines = Array.isArray(data.lines) ? data.lines : [];
  ui.stats.replaceChildren(
    stat(t("time"), `${Number(data.time).toFixed(3)} s`),
    stat(t("lines"), String(lines.length)),
    stat(t("size"), `${data.width}×${data.height}`),
  );
  ui.overlay.setAttribute("viewBox", `0 0 ${data.width} ${data.height}`);
  ui.overlay.replaceChildren();
  ui.lines.replaceChildren();
  lines.forEach((line, i) => {
    const low = Number(line.confidence) < LOW_CONFIDENCE;
    const li = document.createElement("li");
    li.className = "line" + (low ? " low" : "");
    li.dataset.index = String(i);
    const idx = document.createElement("span");
    idx.className = "idx";
    idx.textContent = String(i + 1);
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = String(line.text);
    const conf = document.createElement("span");
    conf.className = "conf";
    conf.textContent = (low ? "⚠ " : "") + (Number(line.confidence) * 100).toFixed(1) + "%";
    if (low) conf.title = t("low");
    li.append(idx, text, conf);
    li.addEventListener("mouseenter", () => highlight(i, true));
    li.addEventListener("mouseleave", () => highlight(i, false));
    ui.lines.append(li);
    if (Array.isArray(line.box)) {
      const poly = document.createElementNS(SVG_NS, "polygon");
      poly.setAttribute("points", line.box.map((p) => `${Number(p[0])},${Number(p[1])}`).join(" "));
      poly.dataset.index = String(i);
      if (low) poly.classList.add("low");
      ui.overlay.append(poly);
    }
  });
  ui.placeholder.hidden = lines.length > 0;
  ui.placeholder.textContent = t("noLines");
  for (const b of [ui.copy, ui.dlTxt, ui.dlJson]) b.disabled = lines.length === 0;
}

function allText() {
  return state.result ? state.result.text.join("\n") : "";
}

async function copyAll() {
  const text = allText();
  try {
    await navigator.clipboard.writeText(text);
  } catch (e) {
    const area = document.createElement("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  ui.copy.textContent = t("copied");
  setTimeout(() => { ui.copy.textContent = t("copy"); }, 1200);
}

function download(content, type, ext) {
  const blob = new Blob([content], { type });
  const a = document.createElement("a");
  const base = (state.file && state.file.name ? state.file.name.replace(/\.[^.]+$/, "") : "ocr") || "ocr";
  a.href = URL.createObjectURL(blob);
  a.download = `${base}.${ext}`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function firstImage(items) {
  for (const item of items || []) {
    if (item.kind === "file" && item.type.startsWith("image/")) return item.getAsFile();
  }
  return null;
}

function init() {
  let lang = "zh";
  try { lang = localStorage.getItem("crnn-ocr-lang") || (navigator.language || "zh").slice(0, 2); } catch (e) { /* */ }
  applyLanguage(lang === "en" ? "en" : "zh");
  ui.lang.addEventListener("click", () => applyLanguage(state.lang === "zh" ? "en" : "zh"));
  ui.drop.addEventListener("click", () => ui.file.click());
  ui.drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); ui.file.click(); }
  });
  ui.file.addEventListener("change", () => setFile(ui.file.files[0]));
  for (const ev of ["dragenter", "dragover"]) {
    ui.drop.addEventListener(ev, (e) => { e.preventDefault(); ui.drop.classList.add("dragging"); });
  }
  for (const ev of ["dragleave", "drop"]) {
    ui.drop.addEventListener(ev, () => ui.drop.classList.remove("dragging"));
  }
  ui.drop.addEventListener("drop", (e) => {
    e.preventDefault();
    const files = e.dataTransfer && e.dataTransfer.files;
    if (files && files.length) setFile(files[0]);
  });
  document.addEventListener("paste", (e) => {
    const file = firstImage(e.clipboardData && e.clipboardData.items);
    if (file) { e.preventDefault(); setFile(file); }
  });
  ui.run.addEventListener("click", recognise);
  ui.copy.addEventListener("click", copyAll);
  ui.dlTxt.addEventListener("click", () => download(allText() + "\n", "text/plain;charset=utf-8", "txt"));
  ui.dlJson.addEventListener("click", () => download(JSON.stringify(state.result, null, 2), "application/json", "json"));
  fetch("/health").then((r) => r.json()).then((h) => { ui.model.textContent = h.model || ""; }).catch(() => {});
  clearResult();
}

init();

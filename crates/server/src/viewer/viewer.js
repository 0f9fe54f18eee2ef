// Meridian's imaging viewer. A SMART public client of this server (authorization code with
// PKCE S256, the token kept in sessionStorage only) that reads everything it shows from
// /dicomweb with the signed-in user's bearer token: QIDO for studies, series and instances,
// WADO metadata for pixel spacing and windows, rendered frames and thumbnails as images, and an
// ECG's rendered SVG. Every visible string comes from STRINGS; DICOM text is only ever set as
// textContent, and the ECG's SVG is parsed inertly and cleaned before it is shown.
'use strict';

(() => {
  const STRINGS = {
    en: {
      brand: 'Meridian imaging',
      studies: 'Studies',
      switchLanguage: 'Switch to Chinese',
      languageName: '中文',
      signIn: 'Sign in',
      signInAgain: 'Sign in again',
      signOut: 'Sign out',
      loading: 'Loading…',
      searchLabel: 'Patient ID or name',
      search: 'Search',
      patientName: 'Patient',
      patientId: 'Patient ID',
      studyDate: 'Study date',
      modalities: 'Modalities',
      description: 'Description',
      counts: 'Series / images',
      noStudies: 'No studies found.',
      unnamed: '(no name)',
      series: 'Series',
      seriesLabel: 'Series {n}',
      imagesCount: '{n} images',
      imageCount: '1 image',
      toolbar: 'Image tools',
      pan: 'Pan',
      measure: 'Measure',
      clearMeasurements: 'Clear measurements',
      zoomIn: 'Zoom in',
      zoomOut: 'Zoom out',
      fit: 'Fit',
      preset: 'Window',
      presetDefault: 'Default',
      presetCustom: 'Custom',
      presetLung: 'Lung',
      presetBone: 'Bone',
      presetBrain: 'Brain',
      presetSoftTissue: 'Soft tissue',
      center: 'Level',
      width: 'Width',
      apply: 'Apply',
      image: 'Image',
      previous: 'Previous image',
      next: 'Next image',
      position: 'Image position',
      frameOf: 'Frame {i} / {n}',
      imageOf: 'Image {i} / {n}',
      instanceNumber: 'Instance {n}',
      windowLevel: 'W {w}  L {c}',
      windowDefault: 'W/L: default',
      zoom: 'Zoom {p}%',
      imageAlt: '{series}, {position}',
      ecgMeasurements: 'Measurements',
      measurementName: 'Measurement',
      measurementValue: 'Value',
      noMeasurements: 'The tracing carries no measurements.',
      ecgHeartRate: 'Heart rate',
      ecgPr: 'PR interval',
      ecgQrs: 'QRS duration',
      ecgQt: 'QT interval',
      ecgQtcBazett: 'QTc (Bazett)',
      ecgQtcFridericia: 'QTc (Fridericia)',
      ecgRr: 'RR interval',
      ecgSpeed: 'Paper speed',
      ecgGain: 'Gain',
      perMinute: '/min',
      signedOut: 'You have signed out.',
      expired: 'Your sign-in has expired or is no longer valid. Sign in again to go on.',
      signInFailed: 'Sign-in did not complete.',
      stateMismatch: 'The sign-in answer does not belong to this page; sign in again.',
      insecure: 'Sign-in needs this page to be opened over HTTPS (or on this computer).',
      forbidden: 'You are not allowed to see this.',
      notFound: 'This study was not found, or you are not allowed to see it.',
      unreachable: 'The server could not be reached.',
      failed: 'The request failed (HTTP {status}).',
      cannotRender: 'This image cannot be shown.',
      ecgCannotRender: 'This ECG cannot be shown.',
    },
    zh: {
      brand: 'Meridian 影像',
      studies: '检查列表',
      switchLanguage: '切换为英文',
      languageName: 'English',
      signIn: '登录',
      signInAgain: '重新登录',
      signOut: '退出登录',
      loading: '正在加载…',
      searchLabel: '患者 ID 或姓名',
      search: '搜索',
      patientName: '患者',
      patientId: '患者 ID',
      studyDate: '检查日期',
      modalities: '检查类型',
      description: '检查描述',
      counts: '序列 / 图像',
      noStudies: '未找到检查。',
      unnamed: '（无姓名）',
      series: '序列',
      seriesLabel: '序列 {n}',
      imagesCount: '{n} 幅图像',
      imageCount: '1 幅图像',
      toolbar: '图像工具',
      pan: '平移',
      measure: '测量',
      clearMeasurements: '清除测量',
      zoomIn: '放大',
      zoomOut: '缩小',
      fit: '适应窗口',
      preset: '窗',
      presetDefault: '默认',
      presetCustom: '自定义',
      presetLung: '肺窗',
      presetBone: '骨窗',
      presetBrain: '脑窗',
      presetSoftTissue: '软组织窗',
      center: '窗位',
      width: '窗宽',
      apply: '应用',
      image: '图像',
      previous: '上一幅',
      next: '下一幅',
      position: '图像位置',
      frameOf: '帧 {i} / {n}',
      imageOf: '图像 {i} / {n}',
      instanceNumber: '实例号 {n}',
      windowLevel: '窗宽 {w}  窗位 {c}',
      windowDefault: '窗宽窗位：默认',
      zoom: '缩放 {p}%',
      imageAlt: '{series}，{position}',
      ecgMeasurements: '测量值',
      measurementName: '项目',
      measurementValue: '数值',
      noMeasurements: '该心电图未附测量值。',
      ecgHeartRate: '心率',
      ecgPr: 'PR 间期',
      ecgQrs: 'QRS 时限',
      ecgQt: 'QT 间期',
      ecgQtcBazett: 'QTc（Bazett）',
      ecgQtcFridericia: 'QTc（Fridericia）',
      ecgRr: 'RR 间期',
      ecgSpeed: '走纸速度',
      ecgGain: '增益',
      perMinute: '次/分',
      signedOut: '您已退出登录。',
      expired: '登录已过期或已失效，请重新登录后继续。',
      signInFailed: '登录未完成。',
      stateMismatch: '登录应答与本页请求不符，请重新登录。',
      insecure: '登录需要通过 HTTPS（或在本机）打开此页面。',
      forbidden: '您无权查看此内容。',
      notFound: '未找到该检查，或您无权查看。',
      unreachable: '无法连接服务器。',
      failed: '请求失败（HTTP {status}）。',
      cannotRender: '无法显示此图像。',
      ecgCannotRender: '无法显示此心电图。',
    },
  };

  // Window presets for CT, in Hounsfield units.
  const CT_PRESETS = [
    ['presetLung', -600, 1500],
    ['presetBone', 300, 1500],
    ['presetBrain', 40, 80],
    ['presetSoftTissue', 50, 400],
  ];
  // The measurements Meridian's ECG rendering names on its SVG's root (data-*), in the order
  // a reader expects them: the string naming each, and its unit (a string key, or as written).
  const ECG_TERMS = new Map([
    ['heart-rate', ['ecgHeartRate', 'perMinute']],
    ['pr', ['ecgPr', 'ms']],
    ['qrs', ['ecgQrs', 'ms']],
    ['qt', ['ecgQt', 'ms']],
    ['qtc-bazett', ['ecgQtcBazett', 'ms']],
    ['qtc-fridericia', ['ecgQtcFridericia', 'ms']],
    ['rr', ['ecgRr', 'ms']],
    ['mm-per-second', ['ecgSpeed', 'mm/s']],
    ['mm-per-millivolt', ['ecgGain', 'mm/mV']],
  ]);
  const ECG_CLASSES = ['1.2.840.10008.5.1.4.1.1.9.1.1', '1.2.840.10008.5.1.4.1.1.9.1.2'];
  const TAG = {
    patientName: '00100010',
    patientId: '00100020',
    studyDate: '00080020',
    studyTime: '00080030',
    studyDescription: '00081030',
    modalitiesInStudy: '00080061',
    studySeriesCount: '00201206',
    studyInstanceCount: '00201208',
    studyUid: '0020000D',
    seriesUid: '0020000E',
    seriesNumber: '00200011',
    seriesDescription: '0008103E',
    seriesInstanceCount: '00201209',
    modality: '00080060',
    sopUid: '00080018',
    sopClass: '00080016',
    instanceNumber: '00200013',
    frames: '00280008',
    rows: '00280010',
    columns: '00280011',
    bitsStored: '00280101',
    pixelRepresentation: '00280103',
    pixelSpacing: '00280030',
    imagerPixelSpacing: '00181164',
    windowCenter: '00281050',
    windowWidth: '00281051',
  };
  const TOKEN_KEY = 'meridian.viewer.token';
  const PENDING_KEY = 'meridian.viewer.sign-in';
  const WHEEL_STEP = 60;

  const $ = (id) => document.getElementById(id);
  const state = {
    lang: 'en',
    config: null,
    message: null,
    studies: null,
    study: null,
    series: [],
    thumbnails: new Map(),
    seriesIndex: -1,
    instances: [],
    stack: [],
    position: 0,
    ticket: 0,
    metadata: new Map(),
    window: null,
    preset: 'default',
    view: { scale: 1, x: 0, y: 0 },
    autoFit: true,
    tool: 'pan',
    marks: new Map(),
    pending: null,
    hover: null,
    image: { url: null, key: null },
    request: null,
    drag: null,
    wheel: 0,
    ecgZoom: 1,
    ecgRows: null,
  };

  // ---- Strings ---------------------------------------------------------------------------

  function t(key, vars) {
    const text = STRINGS[state.lang][key] ?? STRINGS.en[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (_, name) => String(vars?.[name] ?? ''));
  }

  function chooseLanguage() {
    const asked = new URLSearchParams(location.search).get('lang');
    if (asked === 'zh' || asked === 'en') return asked;
    return (navigator.language || '').toLowerCase().startsWith('zh') ? 'zh' : 'en';
  }

  function applyStrings() {
    document.documentElement.lang = state.lang === 'zh' ? 'zh-CN' : 'en';
    document.title = t('brand');
    for (const element of document.querySelectorAll('[data-t]')) {
      element.textContent = t(element.dataset.t);
    }
    for (const element of document.querySelectorAll('[data-t-label]')) {
      element.setAttribute('aria-label', t(element.dataset.tLabel));
      element.title = t(element.dataset.tLabel);
    }
    const switcher = $('lang-switch');
    switcher.textContent = t('languageName');
    switcher.lang = state.lang === 'zh' ? 'en' : 'zh-CN';
    $('message-sign-in').textContent = t(state.message?.key === 'expired' ? 'signInAgain' : 'signIn');
    for (const link of [$('brand'), $('to-list')]) link.href = `./?lang=${state.lang}`;
  }

  function switchLanguage() {
    state.lang = state.lang === 'zh' ? 'en' : 'zh';
    const url = new URL(location.href);
    url.searchParams.set('lang', state.lang);
    history.replaceState(null, '', url);
    applyStrings();
    if (state.message) renderMessage();
    if (state.studies) renderStudies();
    if (state.study) {
      fillPresets();
      renderSeriesList();
      renderPosition();
      renderOverlay();
      if (state.ecgRows) renderEcgTable(state.ecgRows);
    }
  }

  // ---- DICOM JSON ------------------------------------------------------------------------

  const values = (dataset, tag) => dataset?.[tag]?.Value ?? [];
  const first = (dataset, tag) => values(dataset, tag)[0];
  const number = (dataset, tag) => {
    const value = Number.parseFloat(first(dataset, tag));
    return Number.isFinite(value) ? value : null;
  };
  const text = (dataset, tag) => {
    const value = first(dataset, tag);
    return value === undefined || value === null ? '' : String(value);
  };

  function personName(value) {
    if (!value) return '';
    if (typeof value === 'string') return value.split('^').filter(Boolean).join(' ');
    const alphabetic = (value.Alphabetic || '').split('^').filter(Boolean).join(' ');
    const ideographic = (value.Ideographic || '').split('^').filter(Boolean).join('');
    const [preferred, other] = state.lang === 'zh' ? [ideographic, alphabetic] : [alphabetic, ideographic];
    if (preferred && other) return `${preferred} (${other})`;
    return preferred || other || (value.Phonetic || '').split('^').filter(Boolean).join(' ');
  }

  function formatDate(da) {
    const match = /^(\d{4})(\d{2})(\d{2})/.exec(da || '');
    return match ? `${match[1]}-${match[2]}-${match[3]}` : da || '';
  }

  function formatTime(tm) {
    const match = /^(\d{2})(\d{2})/.exec(tm || '');
    return match ? `${match[1]}:${match[2]}` : '';
  }

  const isEcg = (instance) => ECG_CLASSES.includes(text(instance, TAG.sopClass));

  // ---- Messages --------------------------------------------------------------------------

  function showMessage(message) {
    state.message = message;
    for (const id of ['list-view', 'study-view', 'busy']) $(id).hidden = true;
    renderMessage();
  }

  function renderMessage() {
    const message = state.message;
    $('message').hidden = false;
    $('message-text').textContent = t(message.key, message.vars);
    $('message-detail').textContent = message.detail || '';
    const button = $('message-sign-in');
    button.hidden = !message.signIn;
    button.textContent = t(message.key === 'expired' ? 'signInAgain' : 'signIn');
  }

  class HttpError extends Error {
    constructor(status, detail) {
      super(`HTTP ${status}`);
      this.status = status;
      this.detail = detail;
    }
  }

  function problemOf(error) {
    const detail = error.detail || '';
    switch (error.status) {
      case 401: return { key: 'expired', signIn: true, detail };
      case 403: return { key: 'forbidden', detail };
      case 404: return { key: 'notFound', detail };
      case 0: return { key: 'unreachable', detail };
      default: return { key: 'failed', vars: { status: error.status ?? '?' }, detail: detail || String(error.message || error) };
    }
  }

  // ---- Sign-in ---------------------------------------------------------------------------

  function token() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(TOKEN_KEY) || 'null');
      if (saved && saved.access_token && saved.expires_at > Date.now() + 30_000) return saved.access_token;
    } catch {
      // A damaged entry is no token.
    }
    return null;
  }

  function forgetToken() {
    sessionStorage.removeItem(TOKEN_KEY);
    $('sign-out').hidden = true;
  }

  function base64url(bytes) {
    let binary = '';
    for (const byte of bytes) binary += String.fromCharCode(byte);
    return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  const randomText = (length) => base64url(crypto.getRandomValues(new Uint8Array(length)));

  async function signIn() {
    const config = state.config;
    if (!window.isSecureContext || !crypto.subtle) {
      showMessage({ key: 'insecure' });
      return;
    }
    const verifier = randomText(48);
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
    const pending = { state: randomText(24), verifier, back: stripSignInParams(location.search) };
    sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
    const url = new URL(config.authorization_endpoint);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: config.client_id,
      redirect_uri: config.redirect_uri,
      scope: config.scope,
      state: pending.state,
      aud: config.aud,
      code_challenge: base64url(new Uint8Array(digest)),
      code_challenge_method: 'S256',
      lang: state.lang,
    }).toString();
    location.assign(url.toString());
  }

  function stripSignInParams(search) {
    const params = new URLSearchParams(search);
    for (const name of ['code', 'state', 'error', 'error_description', 'iss']) params.delete(name);
    const rest = params.toString();
    return rest ? `?${rest}` : '';
  }

  // Back from the authorization endpoint: the code exchanged for a token (or the refusal
  // shown). Answers whether the page may go on.
  async function completeSignIn(params) {
    let pending = null;
    try {
      pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) || 'null');
    } catch {
      pending = null;
    }
    sessionStorage.removeItem(PENDING_KEY);
    const back = pending?.back ?? stripSignInParams(location.search);
    history.replaceState(null, '', location.pathname + back);
    if (back.includes('lang=')) state.lang = chooseLanguage();
    applyStrings();
    if (params.get('error')) {
      showMessage({ key: 'signInFailed', signIn: true, detail: params.get('error_description') || params.get('error') });
      return false;
    }
    if (!pending || pending.state !== params.get('state')) {
      showMessage({ key: 'stateMismatch', signIn: true });
      return false;
    }
    const config = state.config;
    let response;
    try {
      response = await fetch(config.token_endpoint, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code: params.get('code') || '',
          redirect_uri: config.redirect_uri,
          client_id: config.client_id,
          code_verifier: pending.verifier,
        }),
      });
    } catch (error) {
      showMessage({ key: 'unreachable', detail: String(error.message || error) });
      return false;
    }
    const answer = await response.json().catch(() => ({}));
    if (!response.ok || !answer.access_token) {
      showMessage({ key: 'signInFailed', signIn: true, detail: answer.error_description || answer.error || `HTTP ${response.status}` });
      return false;
    }
    const seconds = Number(answer.expires_in) || 300;
    sessionStorage.setItem(TOKEN_KEY, JSON.stringify({
      access_token: answer.access_token,
      expires_at: Date.now() + seconds * 1000,
    }));
    return true;
  }

  function signOut() {
    forgetToken();
    state.study = null;
    state.studies = null;
    showMessage({ key: 'signedOut', signIn: true });
  }

  // ---- DICOMweb --------------------------------------------------------------------------

  // A request to /dicomweb under the user's token. `as`: json (an empty answer is []), blob,
  // or svg (text that must be an SVG).
  async function api(path, { accept = 'application/dicom+json', as = 'json', signal } = {}) {
    const headers = { Accept: accept };
    const bearer = token();
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    let response;
    try {
      response = await fetch(state.config.dicomweb + path, { headers, signal });
    } catch (error) {
      if (error.name === 'AbortError') throw error;
      throw new HttpError(0, String(error.message || error));
    }
    if (!response.ok) {
      const detail = (await response.text().catch(() => '')).trim().slice(0, 400);
      if (response.status === 401) forgetToken();
      throw new HttpError(response.status, detail);
    }
    if (as === 'blob') return response.blob();
    if (as === 'svg') {
      if (!(response.headers.get('Content-Type') || '').includes('svg')) {
        throw new HttpError(406, `the server answered ${response.headers.get('Content-Type')}, not SVG`);
      }
      return response.text();
    }
    const body = await response.text();
    return body.trim() ? JSON.parse(body) : [];
  }

  const enc = encodeURIComponent;
  const includes = (...tags) => tags.map((tag) => `includefield=${tag}`).join('&');
  const seriesPath = (series) => `/studies/${enc(state.study.uid)}/series/${enc(text(series, TAG.seriesUid))}`;
  const instancePath = (instance) =>
    `${seriesPath(state.series[state.seriesIndex])}/instances/${enc(text(instance, TAG.sopUid))}`;

  // ---- The study list --------------------------------------------------------------------

  async function openList() {
    $('list-view').hidden = false;
    const query = new URLSearchParams(location.search).get('q') || '';
    $('search-text').value = query;
    await search(query);
  }

  async function search(query) {
    const fields = includes(TAG.studyDescription, TAG.modalitiesInStudy, TAG.studySeriesCount, TAG.studyInstanceCount);
    const term = query.trim();
    const paths = term
      ? [`/studies?PatientID=${enc(term)}*&${fields}&limit=100`,
        `/studies?PatientName=${enc(term)}&fuzzymatching=true&${fields}&limit=100`]
      : [`/studies?${fields}&limit=100`];
    $('busy').hidden = false;
    try {
      const found = new Map();
      for (const answer of await Promise.all(paths.map((path) => api(path)))) {
        for (const study of answer) found.set(text(study, TAG.studyUid), study);
      }
      state.studies = [...found.values()].sort((a, b) =>
        (text(b, TAG.studyDate) + text(b, TAG.studyTime)).localeCompare(text(a, TAG.studyDate) + text(a, TAG.studyTime)));
      renderStudies();
    } catch (error) {
      showMessage(problemOf(error));
    } finally {
      $('busy').hidden = true;
    }
  }

  function cell(row, content) {
    const td = document.createElement('td');
    if (content instanceof Node) td.append(content);
    else td.textContent = content;
    row.append(td);
  }

  function renderStudies() {
    const body = $('study-table').tBodies[0];
    body.replaceChildren();
    for (const study of state.studies) {
      const row = document.createElement('tr');
      const link = document.createElement('a');
      link.href = `?study=${enc(text(study, TAG.studyUid))}&lang=${state.lang}`;
      link.textContent = personName(first(study, TAG.patientName)) || t('unnamed');
      cell(row, link);
      cell(row, text(study, TAG.patientId));
      cell(row, `${formatDate(text(study, TAG.studyDate))} ${formatTime(text(study, TAG.studyTime))}`.trim());
      cell(row, values(study, TAG.modalitiesInStudy).join(', '));
      cell(row, text(study, TAG.studyDescription));
      const counts = [text(study, TAG.studySeriesCount), text(study, TAG.studyInstanceCount)].filter(Boolean);
      cell(row, counts.join(' / '));
      body.append(row);
    }
    $('list-empty').hidden = state.studies.length > 0;
  }

  // ---- The study view --------------------------------------------------------------------

  async function openStudy(uid) {
    $('busy').hidden = false;
    try {
      const studies = await api(`/studies?StudyInstanceUID=${enc(uid)}&${includes(TAG.studyDescription, TAG.modalitiesInStudy)}`);
      if (!studies.length) {
        showMessage({ key: 'notFound' });
        return;
      }
      state.study = { uid, dataset: studies[0] };
      const series = await api(`/studies/${enc(uid)}/series?${includes(TAG.seriesDescription, TAG.seriesNumber, TAG.seriesInstanceCount)}`);
      state.series = series.sort((a, b) => (number(a, TAG.seriesNumber) ?? 0) - (number(b, TAG.seriesNumber) ?? 0));
      if (!state.series.length) {
        showMessage({ key: 'notFound' });
        return;
      }
      $('study-view').hidden = false;
      $('busy').hidden = true;
      renderSeriesList();
      loadThumbnails();
      await selectSeries(0);
    } catch (error) {
      showMessage(problemOf(error));
    } finally {
      $('busy').hidden = true;
    }
  }

  function seriesCaption(series, index) {
    const label = t('seriesLabel', { n: text(series, TAG.seriesNumber) || index + 1 });
    return [`${label} · ${text(series, TAG.modality)}`, text(series, TAG.seriesDescription)];
  }

  function renderSeriesList() {
    const list = $('series-list');
    list.replaceChildren();
    state.series.forEach((series, index) => {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.dataset.index = String(index);
      button.setAttribute('aria-current', String(index === state.seriesIndex));
      button.append(preview(index));
      const [title, description] = seriesCaption(series, index);
      const count = text(series, TAG.seriesInstanceCount);
      const images = count && t(count === '1' ? 'imageCount' : 'imagesCount', { n: count });
      for (const line of [title, description, images]) {
        if (!line) continue;
        const caption = document.createElement('span');
        caption.className = 'caption';
        caption.textContent = line;
        button.append(caption);
      }
      button.addEventListener('click', () => selectSeries(index));
      item.append(button);
      list.append(item);
    });
  }

  function preview(index) {
    const thumbnail = state.thumbnails.get(index);
    if (thumbnail?.url) {
      const image = document.createElement('img');
      image.src = thumbnail.url;
      image.alt = '';
      return image;
    }
    const none = document.createElement('span');
    none.className = 'no-preview';
    none.textContent = thumbnail ? text(state.series[index], TAG.modality) : '…';
    if (!thumbnail) none.dataset.pending = 'true';
    return none;
  }

  // Thumbnails, four at a time; a series without one shows its modality.
  async function loadThumbnails() {
    let next = 0;
    const worker = async () => {
      while (next < state.series.length) {
        const index = next++;
        try {
          const blob = await api(`${seriesPath(state.series[index])}/thumbnail`, { accept: 'image/jpeg', as: 'blob' });
          state.thumbnails.set(index, { url: URL.createObjectURL(blob) });
        } catch (error) {
          if (error.status === 401) {
            showMessage(problemOf(error));
            return;
          }
          state.thumbnails.set(index, { url: null });
        }
        $('series-list').querySelector(`button[data-index="${index}"]`)?.firstElementChild?.replaceWith(preview(index));
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
  }

  async function selectSeries(index) {
    const series = state.series[index];
    state.seriesIndex = index;
    state.window = null;
    state.preset = 'default';
    state.autoFit = true;
    state.ecgZoom = 1;
    renderSeriesList();
    fillPresets();
    let instances;
    try {
      instances = await api(`${seriesPath(series)}/instances?${includes(TAG.frames, TAG.instanceNumber, TAG.sopClass, TAG.rows, TAG.columns)}`);
    } catch (error) {
      showMessage(problemOf(error));
      return;
    }
    if (state.seriesIndex !== index) return;
    state.instances = instances.sort((a, b) =>
      (number(a, TAG.instanceNumber) ?? 0) - (number(b, TAG.instanceNumber) ?? 0)
      || text(a, TAG.sopUid).localeCompare(text(b, TAG.sopUid)));
    state.stack = [];
    state.instances.forEach((instance, position) => {
      const frames = isEcg(instance) ? 1 : Math.max(1, number(instance, TAG.frames) ?? 1);
      for (let frame = 1; frame <= frames; frame++) state.stack.push({ instance, position, frame, frames });
    });
    const slider = $('frame-slider');
    slider.max = String(Math.max(1, state.stack.length));
    slider.disabled = state.stack.length < 2;
    await showPosition(0);
  }

  function positionText() {
    const entry = state.stack[state.position];
    if (!entry) return '';
    const count = state.instances.length;
    const image = t('imageOf', { i: entry.position + 1, n: count });
    const frame = t('frameOf', { i: entry.frame, n: entry.frames });
    if (count > 1 && entry.frames > 1) return `${image} · ${frame}`;
    return entry.frames > 1 ? frame : image;
  }

  function renderPosition() {
    $('frame-indicator').textContent = positionText();
    $('frame-slider').value = String(state.position + 1);
  }

  function go(position) {
    if (!state.stack.length) return;
    const clamped = Math.min(state.stack.length - 1, Math.max(0, position));
    if (clamped !== state.position) showPosition(clamped);
  }

  async function showPosition(position) {
    state.position = position;
    state.pending = null;
    state.hover = null;
    renderPosition();
    const entry = state.stack[position];
    if (!entry) return;
    const ticket = ++state.ticket;
    if (isEcg(entry.instance)) {
      await showEcg(entry, ticket);
      return;
    }
    $('ecg').hidden = true;
    $('stage').hidden = false;
    $('window-controls').hidden = false;
    $('image-tools').hidden = false;
    state.ecgRows = null;
    const metadata = metadataOf(entry.instance);
    await loadImage(ticket);
    entry.metadata = await metadata;
    if (ticket !== state.ticket) return;
    fillWindowInputs();
    renderMarks();
    renderOverlay();
  }

  // The instance's own attributes (pixel spacing, windows), once per instance; none when they
  // cannot be read (a measurement is then in pixels).
  function metadataOf(instance) {
    const sop = text(instance, TAG.sopUid);
    if (!state.metadata.has(sop)) {
      state.metadata.set(sop, api(`${instancePath(instance)}/metadata`)
        .then((answer) => answer[0] || null)
        .catch((error) => {
          state.metadata.delete(sop);
          if (error.status === 401) showMessage(problemOf(error));
          return null;
        }));
    }
    return state.metadata.get(sop);
  }

  function imagePath(entry) {
    const windowed = state.window ? `?window=${enc(`${round(state.window.center)},${round(state.window.width)}`)}` : '';
    return `${instancePath(entry.instance)}/frames/${entry.frame}/rendered${windowed}`;
  }

  const round = (value) => Math.round(value * 100) / 100;

  async function loadImage(ticket) {
    const entry = state.stack[state.position];
    state.request?.abort();
    const request = new AbortController();
    state.request = request;
    const problem = $('image-problem');
    const path = imagePath(entry);
    try {
      const blob = await api(path, { accept: 'image/png', as: 'blob', signal: request.signal });
      const url = URL.createObjectURL(blob);
      const image = $('image');
      const loaded = new Image();
      loaded.src = url;
      await loaded.decode();
      if (request.signal.aborted || ticket !== state.ticket) {
        URL.revokeObjectURL(url);
        return;
      }
      const previous = state.image.url;
      const sized = image.naturalWidth !== loaded.naturalWidth || image.naturalHeight !== loaded.naturalHeight;
      image.src = url;
      // Which rendering is on screen, for whoever inspects the page (the browser test does).
      image.dataset.path = path;
      await image.decode().catch(() => {});
      if (previous) URL.revokeObjectURL(previous);
      state.image = { url, key: `${text(entry.instance, TAG.sopUid)}/${entry.frame}` };
      problem.hidden = true;
      image.hidden = false;
      image.alt = t('imageAlt', { series: seriesCaption(state.series[state.seriesIndex], state.seriesIndex)[0], position: positionText() });
      sizeMarks();
      if (sized || state.autoFit) fit();
    } catch (error) {
      if (error.name === 'AbortError') return;
      if (error.status === 401) {
        showMessage(problemOf(error));
        return;
      }
      $('image').hidden = true;
      problem.textContent = `${t('cannotRender')}\n${error.detail || ''}`.trim();
      problem.hidden = false;
    } finally {
      if (state.request === request) state.request = null;
    }
  }

  // ---- Window and level ------------------------------------------------------------------

  function defaultWindow(entry) {
    const metadata = entry?.metadata;
    const center = number(metadata, TAG.windowCenter);
    const width = number(metadata, TAG.windowWidth);
    return center !== null && width !== null && width > 0 ? { center, width } : null;
  }

  // Where a right-drag starts: the window shown, else a window over the stored bit depth.
  function startingWindow(entry) {
    if (state.window) return state.window;
    const own = defaultWindow(entry);
    if (own) return own;
    if (text(state.series[state.seriesIndex], TAG.modality) === 'CT') return { center: 40, width: 400 };
    const bits = number(entry?.metadata, TAG.bitsStored) ?? 8;
    const signed = number(entry?.metadata, TAG.pixelRepresentation) === 1;
    return { center: signed ? 0 : 2 ** (bits - 1), width: 2 ** bits };
  }

  function fillPresets() {
    const select = $('wl-preset');
    select.replaceChildren();
    const option = (value, label) => {
      const element = document.createElement('option');
      element.value = value;
      element.textContent = label;
      select.append(element);
    };
    option('default', t('presetDefault'));
    if (text(state.series[state.seriesIndex], TAG.modality) === 'CT') {
      for (const [key] of CT_PRESETS) option(key, t(key));
    }
    option('custom', t('presetCustom'));
    select.value = state.preset;
  }

  function fillWindowInputs() {
    const shown = state.window || defaultWindow(state.stack[state.position]);
    $('wl-center').value = shown ? String(round(shown.center)) : '';
    $('wl-width').value = shown ? String(round(shown.width)) : '';
    $('wl-preset').value = state.preset;
  }

  function setWindow(window, preset) {
    state.window = window;
    state.preset = preset;
    fillWindowInputs();
    renderOverlay();
  }

  function applyWindowInputs() {
    const center = Number.parseFloat($('wl-center').value);
    const width = Number.parseFloat($('wl-width').value);
    if (!Number.isFinite(center) || !Number.isFinite(width) || width <= 0) return;
    setWindow({ center, width }, 'custom');
    loadImage(state.ticket);
  }

  function choosePreset(value) {
    const preset = CT_PRESETS.find(([key]) => key === value);
    if (preset) setWindow({ center: preset[1], width: preset[2] }, value);
    else if (value === 'default') setWindow(null, 'default');
    else return;
    loadImage(state.ticket);
  }

  let windowTimer = null;
  function dragWindow(drag, event) {
    const sensitivity = Math.max(0.5, drag.start.width / 256);
    const width = Math.max(1, drag.start.width + (event.clientX - drag.x) * sensitivity);
    const center = drag.start.center + (event.clientY - drag.y) * sensitivity;
    setWindow({ center, width }, 'custom');
    clearTimeout(windowTimer);
    windowTimer = setTimeout(() => loadImage(state.ticket), 60);
  }

  // ---- Zoom, pan and the overlay ---------------------------------------------------------

  function applyView() {
    const { scale, x, y } = state.view;
    $('stage').style.transform = `translate(${x}px, ${y}px) scale(${scale})`;
    renderMarks();
    renderOverlay();
  }

  function fit() {
    const image = $('image');
    const viewport = $('viewport');
    if (!image.naturalWidth || !viewport.clientWidth) return;
    const scale = Math.min(viewport.clientWidth / image.naturalWidth, viewport.clientHeight / image.naturalHeight);
    state.view = {
      scale,
      x: (viewport.clientWidth - image.naturalWidth * scale) / 2,
      y: (viewport.clientHeight - image.naturalHeight * scale) / 2,
    };
    state.autoFit = true;
    applyView();
  }

  // Zooms by `factor` about a point of the viewport (its centre when none is given).
  function zoom(factor, at) {
    if (!$('ecg').hidden) {
      state.ecgZoom = Math.min(8, Math.max(0.25, state.ecgZoom * factor));
      applyEcgZoom();
      renderOverlay();
      return;
    }
    const viewport = $('viewport');
    const point = at || { x: viewport.clientWidth / 2, y: viewport.clientHeight / 2 };
    const view = state.view;
    const scale = Math.min(40, Math.max(0.05, view.scale * factor));
    const ratio = scale / view.scale;
    state.view = { scale, x: point.x - (point.x - view.x) * ratio, y: point.y - (point.y - view.y) * ratio };
    state.autoFit = false;
    applyView();
  }

  function line(parent, lines) {
    parent.replaceChildren();
    for (const content of lines) {
      if (!content) continue;
      const row = document.createElement('div');
      row.textContent = content;
      parent.append(row);
    }
  }

  function renderOverlay() {
    const study = state.study?.dataset;
    const series = state.series[state.seriesIndex];
    const entry = state.stack[state.position];
    if (!study || !series || !entry) return;
    line($('overlay-tl'), [
      personName(first(study, TAG.patientName)) || t('unnamed'),
      text(study, TAG.patientId) && `ID ${text(study, TAG.patientId)}`,
    ]);
    line($('overlay-tr'), [
      `${formatDate(text(study, TAG.studyDate))} ${formatTime(text(study, TAG.studyTime))}`.trim(),
      text(study, TAG.studyDescription),
    ]);
    const instanceNumber = text(entry.instance, TAG.instanceNumber);
    line($('overlay-bl'), [
      seriesCaption(series, state.seriesIndex).filter(Boolean).join(' · '),
      [positionText(), instanceNumber && t('instanceNumber', { n: instanceNumber })].filter(Boolean).join(' · '),
    ]);
    if (isEcg(entry.instance)) {
      line($('overlay-br'), [t('zoom', { p: Math.round(state.ecgZoom * 100) })]);
      return;
    }
    const shown = state.window || defaultWindow(entry);
    line($('overlay-br'), [
      shown ? t('windowLevel', { w: Math.round(shown.width), c: Math.round(shown.center) }) : t('windowDefault'),
      t('zoom', { p: Math.round(state.view.scale * 100) }),
    ]);
  }

  // ---- Measurement -----------------------------------------------------------------------

  const SVG = 'http://www.w3.org/2000/svg';

  function svgElement(name, attributes) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
    return element;
  }

  function sizeMarks() {
    const image = $('image');
    const marks = $('marks');
    marks.setAttribute('width', image.naturalWidth);
    marks.setAttribute('height', image.naturalHeight);
    marks.setAttribute('viewBox', `0 0 ${image.naturalWidth} ${image.naturalHeight}`);
  }

  // A point of the image (in its pixels) under a pointer event.
  function imagePoint(event) {
    const image = $('image');
    const box = image.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) * image.naturalWidth) / box.width,
      y: ((event.clientY - box.top) * image.naturalHeight) / box.height,
    };
  }

  // The length of a line in millimetres by the instance's pixel spacing (PixelSpacing, else
  // ImagerPixelSpacing: row spacing, then column spacing), else in pixels.
  function lengthOf(a, b) {
    const entry = state.stack[state.position];
    const metadata = entry?.metadata;
    const image = $('image');
    const spacing = [TAG.pixelSpacing, TAG.imagerPixelSpacing]
      .map((tag) => values(metadata, tag).map(Number.parseFloat))
      .find((pair) => pair.length === 2 && pair.every((v) => Number.isFinite(v) && v > 0));
    const dx = b.x - a.x;
    const dy = b.y - a.y;
    if (!spacing) return { value: Math.hypot(dx, dy), unit: 'px' };
    // The rendered image may be scaled from the stored Rows × Columns.
    const columns = number(metadata, TAG.columns) || image.naturalWidth;
    const rows = number(metadata, TAG.rows) || image.naturalHeight;
    const x = dx * spacing[1] * (columns / image.naturalWidth);
    const y = dy * spacing[0] * (rows / image.naturalHeight);
    return { value: Math.hypot(x, y), unit: 'mm' };
  }

  function addPoint(point) {
    const key = state.image.key;
    if (!key) return;
    if (!state.pending) {
      state.pending = point;
    } else {
      const marks = state.marks.get(key) || [];
      marks.push({ a: state.pending, b: point });
      state.marks.set(key, marks);
      state.pending = null;
      state.hover = null;
    }
    renderMarks();
  }

  function renderMarks() {
    const marks = $('marks');
    marks.replaceChildren();
    const scale = state.view.scale || 1;
    const lines = [...(state.marks.get(state.image.key) || [])];
    if (state.pending) lines.push({ a: state.pending, b: state.hover || state.pending, pending: true });
    for (const { a, b, pending } of lines) {
      // The stage is scaled by CSS, which SVG's non-scaling strokes do not undo: sizes are
      // divided by the scale so that marks keep their size on screen.
      marks.append(svgElement('line', { x1: a.x, y1: a.y, x2: b.x, y2: b.y, 'stroke-width': 2 / scale }));
      for (const end of pending ? [a] : [a, b]) {
        marks.append(svgElement('circle', { cx: end.x, cy: end.y, r: 3 / scale }));
      }
      if (pending) continue;
      const length = lengthOf(a, b);
      const label = svgElement('text', {
        x: Math.max(a.x, b.x) + 6 / scale,
        y: (a.y + b.y) / 2,
        'font-size': 14 / scale,
        'stroke-width': 3 / scale,
        'data-length': length.value,
        'data-unit': length.unit,
        class: 'distance',
      });
      label.textContent = `${length.value.toFixed(1)} ${length.unit}`;
      marks.append(label);
    }
  }

  function setTool(tool) {
    state.tool = tool;
    state.pending = null;
    $('tool-pan').setAttribute('aria-pressed', String(tool === 'pan'));
    $('tool-measure').setAttribute('aria-pressed', String(tool === 'measure'));
    $('viewport').classList.toggle('measuring', tool === 'measure');
    renderMarks();
  }

  // ---- ECG -------------------------------------------------------------------------------

  // What an SVG may keep: shapes, text and their grouping; no scripts, no foreign content, no
  // links out of the document.
  const SVG_ELEMENTS = new Set(['svg', 'g', 'path', 'polyline', 'polygon', 'line', 'rect', 'circle',
    'ellipse', 'text', 'tspan', 'title', 'desc', 'defs', 'pattern', 'clipPath', 'linearGradient',
    'radialGradient', 'stop', 'symbol', 'use', 'marker']);

  function cleanSvg(element) {
    for (const child of [...element.children]) {
      if (child.namespaceURI !== SVG || !SVG_ELEMENTS.has(child.localName)) child.remove();
      else cleanSvg(child);
    }
    for (const attribute of [...element.attributes]) {
      const name = attribute.localName.toLowerCase();
      const link = name === 'href' || name === 'src';
      if (name.startsWith('on') || (link && !attribute.value.startsWith('#'))) {
        element.removeAttributeNode(attribute);
      }
    }
  }

  // The measurements an ECG's SVG carries: JSON in <metadata> (a list of {name, value, unit}
  // or an object of name → value), elements with data-measurement / data-value / data-unit,
  // and data-* attributes of the root element.
  function ecgMeasurements(root) {
    const rows = [];
    const add = (name, value, unit, term) => {
      if (name === undefined || name === null || value === undefined || value === null || value === '') return;
      if (typeof value === 'object') return;
      rows.push({ name: String(name), term, value: String(value), unit: unit ? String(unit) : '' });
    };
    const fromJson = (value) => {
      if (Array.isArray(value)) {
        for (const item of value) {
          if (item && typeof item === 'object') add(item.name ?? item.label ?? item.code, item.value, item.unit);
        }
      } else if (value && typeof value === 'object') {
        if (value.measurements) return fromJson(value.measurements);
        for (const [name, item] of Object.entries(value)) {
          if (item && typeof item === 'object' && !Array.isArray(item)) add(name, item.value, item.unit);
          else add(name, item);
        }
      }
    };
    for (const metadata of root.getElementsByTagNameNS('*', 'metadata')) {
      const content = metadata.textContent.trim();
      if (content.startsWith('{') || content.startsWith('[')) {
        try {
          fromJson(JSON.parse(content));
        } catch {
          // Not JSON: nothing to show from it.
        }
      } else {
        for (const item of metadata.getElementsByTagName('*')) {
          if (item.children.length) continue;
          add(item.getAttribute('name') || item.localName, item.getAttribute('value') ?? item.textContent.trim(), item.getAttribute('unit'));
        }
      }
    }
    for (const item of root.querySelectorAll('[data-measurement]')) {
      add(item.getAttribute('data-measurement'), item.getAttribute('data-value') ?? item.textContent.trim(), item.getAttribute('data-unit'));
    }
    const named = [...root.attributes].filter((attribute) => attribute.name.startsWith('data-'));
    const known = [...ECG_TERMS.keys()];
    const order = (attribute) => {
      const at = known.indexOf(attribute.name.slice(5));
      return at < 0 ? known.length : at;
    };
    for (const attribute of named.sort((a, b) => order(a) - order(b))) {
      const key = attribute.name.slice(5);
      const [term, unit] = ECG_TERMS.get(key) || [];
      add(key.replace(/-/g, ' '), attribute.value, unit, term);
    }
    return rows;
  }

  async function showEcg(entry, ticket) {
    $('stage').hidden = true;
    $('window-controls').hidden = true;
    $('image-tools').hidden = true;
    $('image-problem').hidden = true;
    try {
      const body = await api(`${instancePath(entry.instance)}/rendered`, { accept: 'image/svg+xml', as: 'svg' });
      if (ticket !== state.ticket) return;
      const parsed = new DOMParser().parseFromString(body, 'image/svg+xml');
      const root = parsed.documentElement;
      if (root.namespaceURI !== SVG || root.localName !== 'svg' || parsed.getElementsByTagName('parsererror').length) {
        throw new HttpError(406, 'the answer is not a well-formed SVG');
      }
      const rows = ecgMeasurements(root);
      cleanSvg(root);
      const svg = document.importNode(root, true);
      if (!svg.getAttribute('viewBox')) {
        const width = svg.getAttribute('width');
        const height = svg.getAttribute('height');
        if (/^[\d.]+(px)?$/.test(width || '') && /^[\d.]+(px)?$/.test(height || '')) {
          svg.setAttribute('viewBox', `0 0 ${Number.parseFloat(width)} ${Number.parseFloat(height)}`);
        }
      }
      if (svg.getAttribute('viewBox')) {
        svg.removeAttribute('width');
        svg.removeAttribute('height');
      }
      svg.setAttribute('role', 'img');
      svg.setAttribute('aria-label', seriesCaption(state.series[state.seriesIndex], state.seriesIndex)[0]);
      $('ecg-tracing').replaceChildren(svg);
      $('ecg').hidden = false;
      state.ecgRows = rows;
      renderEcgTable(rows);
      applyEcgZoom();
    } catch (error) {
      if (ticket !== state.ticket) return;
      if (error.status === 401) {
        showMessage(problemOf(error));
        return;
      }
      $('ecg').hidden = true;
      const problem = $('image-problem');
      problem.textContent = `${t('ecgCannotRender')}\n${error.detail || error.message || ''}`.trim();
      problem.hidden = false;
    }
    renderOverlay();
  }

  function renderEcgTable(rows) {
    const body = $('ecg-table').tBodies[0];
    body.replaceChildren();
    for (const { name, term, value, unit } of rows) {
      const row = document.createElement('tr');
      cell(row, term ? t(term) : name);
      const shownUnit = STRINGS.en[unit] ? t(unit) : unit;
      cell(row, shownUnit ? `${value} ${shownUnit}` : value);
      body.append(row);
    }
    $('ecg-table').hidden = rows.length === 0;
    $('ecg-none').hidden = rows.length > 0;
  }

  function applyEcgZoom() {
    const svg = $('ecg-tracing').firstElementChild;
    if (!svg) return;
    if (svg.getAttribute('viewBox')) {
      svg.style.width = `${state.ecgZoom * 100}%`;
    } else {
      svg.style.transformOrigin = '0 0';
      svg.style.transform = `scale(${state.ecgZoom})`;
    }
  }

  // ---- Input -----------------------------------------------------------------------------

  function bindViewport() {
    const viewport = $('viewport');
    viewport.addEventListener('contextmenu', (event) => event.preventDefault());
    viewport.addEventListener('pointerdown', (event) => {
      viewport.focus();
      if (!$('ecg').hidden || !state.image.key) return;
      if (event.button === 2 || (event.button === 0 && event.shiftKey)) {
        state.drag = { kind: 'window', x: event.clientX, y: event.clientY, start: startingWindow(state.stack[state.position]) };
      } else if (event.button === 0) {
        state.drag = { kind: 'pointer', x: event.clientX, y: event.clientY, view: { ...state.view }, moved: false };
      } else {
        return;
      }
      viewport.setPointerCapture(event.pointerId);
      event.preventDefault();
    });
    viewport.addEventListener('pointermove', (event) => {
      const drag = state.drag;
      if (state.tool === 'measure' && state.pending && (!drag || drag.kind === 'pointer')) {
        state.hover = imagePoint(event);
        renderMarks();
      }
      if (!drag) return;
      if (drag.kind === 'window') {
        dragWindow(drag, event);
        return;
      }
      const dx = event.clientX - drag.x;
      const dy = event.clientY - drag.y;
      if (Math.hypot(dx, dy) > 3) drag.moved = true;
      if (drag.moved && state.tool === 'pan') {
        state.view = { ...drag.view, x: drag.view.x + dx, y: drag.view.y + dy };
        state.autoFit = false;
        applyView();
      }
    });
    const end = (event) => {
      const drag = state.drag;
      state.drag = null;
      if (!drag) return;
      if (drag.kind === 'window') {
        clearTimeout(windowTimer);
        loadImage(state.ticket);
      } else if (!drag.moved && state.tool === 'measure' && event.type === 'pointerup') {
        addPoint(imagePoint(event));
      }
    };
    viewport.addEventListener('pointerup', end);
    viewport.addEventListener('pointercancel', end);
    viewport.addEventListener('wheel', (event) => {
      if (event.ctrlKey || event.metaKey) {
        event.preventDefault();
        const box = viewport.getBoundingClientRect();
        zoom(Math.exp(-event.deltaY * 0.002), { x: event.clientX - box.left, y: event.clientY - box.top });
        return;
      }
      if (!$('ecg').hidden) return;
      event.preventDefault();
      state.wheel += event.deltaMode === 1 ? event.deltaY * 40 : event.deltaY;
      while (Math.abs(state.wheel) >= WHEEL_STEP) {
        const step = Math.sign(state.wheel);
        state.wheel -= step * WHEEL_STEP;
        go(state.position + step);
      }
    }, { passive: false });
    window.addEventListener('resize', () => {
      if (state.autoFit && !$('study-view').hidden) fit();
    });
  }

  function bindKeys() {
    document.addEventListener('keydown', (event) => {
      if ($('study-view').hidden || event.altKey || event.ctrlKey || event.metaKey) return;
      const target = event.target;
      if (target instanceof HTMLInputElement || target instanceof HTMLSelectElement || target instanceof HTMLTextAreaElement) return;
      const actions = {
        ArrowDown: () => go(state.position + 1),
        ArrowRight: () => go(state.position + 1),
        PageDown: () => go(state.position + 10),
        ArrowUp: () => go(state.position - 1),
        ArrowLeft: () => go(state.position - 1),
        PageUp: () => go(state.position - 10),
        Home: () => go(0),
        End: () => go(state.stack.length - 1),
        '+': () => zoom(1.25),
        '=': () => zoom(1.25),
        '-': () => zoom(0.8),
        0: () => fit(),
        m: () => setTool(state.tool === 'measure' ? 'pan' : 'measure'),
        Escape: () => {
          state.pending = null;
          renderMarks();
        },
      };
      const action = actions[event.key];
      if (!action) return;
      // Buttons keep their own Enter and Space; arrows move through the images everywhere.
      event.preventDefault();
      action();
    });
  }

  function bindControls() {
    $('lang-switch').addEventListener('click', switchLanguage);
    $('sign-out').addEventListener('click', signOut);
    $('message-sign-in').addEventListener('click', signIn);
    $('search').addEventListener('submit', (event) => {
      event.preventDefault();
      const query = $('search-text').value;
      const url = new URL(location.href);
      url.searchParams.set('q', query);
      history.replaceState(null, '', url);
      search(query);
    });
    $('tool-pan').addEventListener('click', () => setTool('pan'));
    $('tool-measure').addEventListener('click', () => setTool(state.tool === 'measure' ? 'pan' : 'measure'));
    $('clear-measurements').addEventListener('click', () => {
      state.marks.delete(state.image.key);
      state.pending = null;
      renderMarks();
    });
    $('zoom-in').addEventListener('click', () => zoom(1.25));
    $('zoom-out').addEventListener('click', () => zoom(0.8));
    $('zoom-fit').addEventListener('click', () => {
      if (!$('ecg').hidden) {
        state.ecgZoom = 1;
        applyEcgZoom();
        renderOverlay();
      } else {
        fit();
      }
    });
    $('wl-preset').addEventListener('change', (event) => choosePreset(event.target.value));
    $('wl-apply').addEventListener('click', applyWindowInputs);
    for (const id of ['wl-center', 'wl-width']) {
      $(id).addEventListener('keydown', (event) => {
        if (event.key === 'Enter') applyWindowInputs();
      });
    }
    $('frame-slider').addEventListener('input', (event) => go(Number(event.target.value) - 1));
    $('previous').addEventListener('click', () => go(state.position - 1));
    $('next').addEventListener('click', () => go(state.position + 1));
  }

  // ---- Start -----------------------------------------------------------------------------

  async function start() {
    state.lang = chooseLanguage();
    applyStrings();
    bindControls();
    bindViewport();
    bindKeys();
    try {
      const response = await fetch('config.json', { cache: 'no-store' });
      if (!response.ok) throw new HttpError(response.status, (await response.text()).slice(0, 400));
      state.config = await response.json();
    } catch (error) {
      showMessage(error instanceof HttpError ? problemOf(error) : { key: 'unreachable', detail: String(error.message || error) });
      return;
    }
    const params = new URLSearchParams(location.search);
    if (state.config.sign_in && (params.has('code') || params.has('error'))) {
      if (!(await completeSignIn(params))) return;
    }
    if (state.config.sign_in && !token()) {
      await signIn();
      return;
    }
    $('sign-out').hidden = !state.config.sign_in;
    const study = new URLSearchParams(location.search).get('study');
    if (study) await openStudy(study);
    else await openList();
  }

  start();
})();

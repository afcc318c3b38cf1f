// The audionotes page: the caller's jobs through the public API, nothing else.
// The token lives in this module's memory only (never in storage, cookies or the URL); every
// text from the API is set with textContent, never parsed as HTML.

// A job in one of these states changes no more (common/domain/jobs.py FINAL_STATES; a unit
// test holds the two equal).
const FINAL_STATES = ["COMPLETED", "FAILED", "CANCELLED"];
const POLL_ACTIVE_MS = 2000;
const POLL_IDLE_MS = 15000;
const LOW_CONFIDENCE = 0.5;
const TYPES = {
  wav: "audio/wav", mp3: "audio/mpeg", m4a: "audio/mp4", mp4: "video/mp4", ogg: "audio/ogg",
  oga: "audio/ogg", opus: "audio/ogg", flac: "audio/flac", webm: "audio/webm", aac: "audio/aac",
};

const $ = (id) => document.getElementById(id);
const state = {
  token: null,
  subject: null,
  doc: null, // /openapi.json: the enums and patterns the page offers come from it
  jobId: null, // the job page shown, if any
  file: null,
  timer: null,
  nextPage: null,
  job: null,
  words: [],
  wordEls: [],
  current: -1,
  names: {},
  transcriptLoaded: false,
  notesLoaded: false,
  audioTried: 0,
};

class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

// --- the API -------------------------------------------------------------------------------

async function api(path, { method = "GET", body, headers = {} } = {}) {
  const sent = { Authorization: `Bearer ${state.token}`, ...headers };
  if (body !== undefined) sent["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch (err) {
    throw new ApiError(0, "unreachable", `the API did not answer (${err.message})`, 5);
  }
  if (response.ok) return response;
  let code = `http_${response.status}`;
  let message = `${response.status} ${response.statusText}`.trim();
  try {
    const answer = await response.json();
    if (answer && answer.error) ({ code, message } = answer.error);
  } catch {
    // not the API's JSON error (a proxy's page): the status says it
  }
  const retryAfter = Number(response.headers.get("Retry-After")) || 0;
  const error = new ApiError(response.status, code, message, retryAfter);
  if (response.status === 401 && state.subject) signOut(`Signed out: ${message}`); // expired
  throw error;
}

async function apiJson(path, options) {
  return (await api(path, options)).json();
}

const jobPath = (id, rest = "") => `/v1/jobs/${encodeURIComponent(id)}${rest}`;

function schema(name) {
  return state.doc.components.schemas[name];
}

function enumOf(property) {
  const seen = [property];
  while (seen.length) {
    const s = seen.pop();
    if (!s) continue;
    if (s.enum) return s.enum;
    if (s.$ref) seen.push(schema(s.$ref.split("/").pop()));
    for (const key of ["anyOf", "oneOf", "allOf"]) if (s[key]) seen.push(...s[key]);
  }
  return [];
}

function queryEnum(path, name) {
  const params = state.doc.paths[path].get.parameters || [];
  const param = params.find((p) => p.name === name);
  return param ? enumOf(param.schema) : [];
}

function jobIdPattern() {
  const param = state.doc.paths["/v1/jobs/{job_id}"].get.parameters.find(
    (p) => p.name === "job_id",
  );
  return new RegExp(param.schema.pattern);
}

// --- messages ------------------------------------------------------------------------------

function say(text) {
  $("status").textContent = text;
}

function showError(err, what) {
  const text = err instanceof ApiError ? `${err.message} (${err.code})` : String(err.message || err);
  $("alert-text").textContent = what ? `${what}: ${text}` : text;
  $("alert").hidden = false;
}

function clearError() {
  $("alert").hidden = true;
  $("alert-text").textContent = "";
}

// --- signing in ----------------------------------------------------------------------------

function subjectOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
    return claims.email || claims.sub || "signed in";
  } catch {
    return "signed in";
  }
}

async function signIn(event) {
  event.preventDefault();
  clearError();
  const token = $("token").value.trim();
  if (!token) {
    showError(new Error("paste a token first"));
    $("token").focus();
    return;
  }
  state.token = token;
  try {
    await apiJson("/v1/jobs?limit=1"); // the API decides; the page only asks it
  } catch (err) {
    state.token = null;
    showError(err, "Not signed in");
    return;
  }
  $("token").value = "";
  state.subject = subjectOf(token);
  $("who").textContent = state.subject;
  $("who").hidden = false;
  $("sign-out").hidden = false;
  say(`Signed in as ${state.subject}`);
  await prepareForm();
  route();
}

function signOut(message) {
  state.token = null;
  state.subject = null;
  stopPolling();
  $("who").hidden = true;
  $("sign-out").hidden = true;
  if (message) showError(new Error(message));
  route();
}

// --- views ---------------------------------------------------------------------------------

function show(view) {
  for (const id of ["view-sign-in", "view-jobs", "view-job"]) $(id).hidden = id !== view;
}

function stopPolling() {
  clearTimeout(state.timer);
  state.timer = null;
}

function poll(fn, ms) {
  stopPolling();
  state.timer = setTimeout(fn, ms);
}

function retryDelay(err, ms) {
  return err instanceof ApiError && err.retryAfter ? err.retryAfter * 1000 : ms;
}

function route() {
  stopPolling();
  leaveJob();
  if (!state.token) {
    show("view-sign-in");
    $("token").focus();
    return;
  }
  const match = location.hash.match(/^#\/jobs\/([^/]+)$/);
  if (match) {
    const id = decodeURIComponent(match[1]);
    if (!jobIdPattern().test(id)) {
      history.replaceState(null, "", "#/"); // no hashchange: the message stays
      route();
      showError(new Error(`${id} is not a job id`));
      return;
    }
    openJob(id);
  } else {
    show("view-jobs");
    loadJobs();
  }
}

// --- the list of jobs ----------------------------------------------------------------------

function fileName(job) {
  const name = job.source.uri.split("/").pop() || job.source.uri;
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}

function when(iso) {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(h ? 2 : 1, "0");
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null) node.append(child);
  return node;
}

function jobItem(job) {
  const progress = el("progress", {
    max: "1",
    value: String(job.progress),
    "aria-label": `Progress of ${fileName(job)}`,
  });
  const line = el(
    "li",
    { class: "job", "data-job": job.job_id, "data-state": job.state },
    el("a", { href: `#/jobs/${job.job_id}`, class: "job-name", text: fileName(job) }),
    el("span", { class: `state state-${job.state.toLowerCase()}`, text: job.state }),
    progress,
    el("span", { class: "hint", text: when(job.created_at) }),
  );
  if (job.error) line.append(el("span", { class: "job-error", text: job.error.message }));
  return line;
}

async function loadJobs(append = false) {
  const token = state.token;
  try {
    const query = new URLSearchParams({ limit: "20" });
    if (append && state.nextPage) query.set("page_token", state.nextPage);
    const page = await apiJson(`/v1/jobs?${query}`);
    if (token !== state.token || state.jobId) return; // signed out, or left the list
    const list = $("jobs");
    if (!append) list.replaceChildren();
    for (const job of page.jobs) list.append(jobItem(job));
    state.nextPage = page.next_page_token;
    $("more").hidden = !state.nextPage;
    $("jobs-empty").hidden = list.children.length > 0;
    const active = [...list.children].some((li) => !FINAL_STATES.includes(li.dataset.state));
    if (!append) poll(() => loadJobs(), active ? POLL_ACTIVE_MS : POLL_IDLE_MS);
  } catch (err) {
    if (!state.token) return;
    showError(err, "Could not list your jobs");
    poll(() => loadJobs(), retryDelay(err, POLL_IDLE_MS));
  }
}

// --- submitting ----------------------------------------------------------------------------

function fillSelect(select, values, chosen, labels = {}) {
  select.replaceChildren(
    ...values.map((v) => {
      const option = el("option", { value: v, text: labels[v] || v });
      if (v === chosen) option.selected = true;
      return option;
    }),
  );
}

async function prepareForm() {
  const create = schema("CreateJob").properties;
  fillSelect($("opt-template"), enumOf(create.notes_template), create.notes_template.default);
  fillSelect($("opt-task"), enumOf(create.task), create.task.default);
  try {
    const catalog = await apiJson("/v1/models");
    const installed = catalog.models.filter((m) => m.installed).map((m) => m.name);
    fillSelect($("opt-model"), ["", ...installed], "", { "": "the tier's default" });
  } catch {
    fillSelect($("opt-model"), [""], "", { "": "the tier's default" });
  }
}

function choose(file) {
  state.file = file || null;
  $("file-chosen").textContent = file
    ? `Chosen: ${file.name} (${(file.size / 1e6).toFixed(1)} MB)`
    : "";
}

function contentType(file) {
  if (/^(audio|video)\//.test(file.type)) return file.type;
  const ext = file.name.split(".").pop().toLowerCase();
  return TYPES[ext] || "application/octet-stream"; // the API sniffs the bytes either way
}

function options() {
  const body = {};
  const text = (id) => $(id).value.trim();
  body.notes_template = $("opt-template").value;
  body.task = $("opt-task").value;
  if ($("opt-model").value) body.model = $("opt-model").value;
  if (text("opt-language")) body.language = text("opt-language").toLowerCase();
  if (text("opt-speakers")) body.speakers = text("opt-speakers");
  if (text("opt-vocabulary")) {
    body.vocabulary = text("opt-vocabulary")
      .split(",")
      .map((t) => t.trim())
      .filter(Boolean);
  }
  return body;
}

function putFile(ticket, file, type) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", ticket.upload_url);
    for (const [key, value] of Object.entries(ticket.headers)) xhr.setRequestHeader(key, value);
    const bar = $("upload-progress");
    bar.hidden = false;
    bar.value = 0;
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) bar.value = e.loaded / e.total;
    };
    xhr.onload = () => {
      bar.hidden = true;
      if (xhr.status >= 200 && xhr.status < 300) return resolve();
      // Cloud Storage answers XML: <Error><Code/><Message/></Error>.
      const xml = new DOMParser().parseFromString(xhr.responseText || "", "application/xml");
      const message = xml.querySelector("Message")?.textContent || `HTTP ${xhr.status}`;
      const code = xml.querySelector("Code")?.textContent || `http_${xhr.status}`;
      reject(new ApiError(xhr.status, code, `the upload was refused: ${message}`, 0));
    };
    xhr.onerror = () => {
      bar.hidden = true;
      reject(new ApiError(0, "upload_failed", "the upload did not reach Cloud Storage", 0));
    };
    xhr.send(file.slice(0, file.size, type));
  });
}

async function submit(event) {
  event.preventDefault();
  clearError();
  const file = state.file;
  if (!file) {
    showError(new Error("choose or drop an audio file first"));
    $("file").focus();
    return;
  }
  const button = $("submit-button");
  button.disabled = true;
  try {
    const type = contentType(file);
    say(`Uploading ${file.name}…`);
    const ticket = await apiJson("/v1/uploads", {
      method: "POST",
      body: { filename: file.name, content_type: type, size_bytes: file.size },
    });
    await putFile(ticket, file, type);
    say(`Submitting ${file.name}…`);
    const job = await apiJson("/v1/jobs", {
      method: "POST",
      body: { audio_url: ticket.audio_url, ...options() },
      headers: { "Idempotency-Key": crypto.randomUUID() }, // a retried POST makes one job
    });
    say(`${file.name} is queued`);
    $("file").value = "";
    choose(null);
    $("jobs").prepend(jobItem(job));
    $("jobs-empty").hidden = true;
    loadJobs();
  } catch (err) {
    say("");
    showError(err, `${file.name} was not submitted`);
  } finally {
    button.disabled = false;
  }
}

function wireDrop() {
  const zone = $("drop");
  const over = (on) => (event) => {
    event.preventDefault();
    zone.classList.toggle("over", on);
  };
  zone.addEventListener("dragenter", over(true));
  zone.addEventListener("dragover", over(true));
  zone.addEventListener("dragleave", over(false));
  zone.addEventListener("drop", (event) => {
    over(false)(event);
    const file = event.dataTransfer?.files?.[0];
    if (file) choose(file);
  });
  $("file").addEventListener("change", () => choose($("file").files[0]));
}

// --- one job -------------------------------------------------------------------------------

function leaveJob() {
  const player = $("player");
  player.pause();
  player.removeAttribute("src");
  player.load();
  Object.assign(state, {
    jobId: null,
    job: null,
    words: [],
    wordEls: [],
    current: -1,
    names: {},
    transcriptLoaded: false,
    notesLoaded: false,
    audioTried: 0,
  });
  for (const id of ["transcript", "notes", "downloads", "speakers-fields"]) $(id).replaceChildren();
  for (const id of ["job-error", "player-box", "transcript-box", "speakers-box", "notes-box",
    "downloads-box", "delete-confirm"]) $(id).hidden = true;
  $("delete-job").hidden = false;
}

async function openJob(id) {
  state.jobId = id;
  show("view-job");
  $("job-title").textContent = "Loading…";
  $("job-meta").textContent = "";
  $("job-state").textContent = "";
  await refreshJob(id);
  $("main").focus();
}

async function refreshJob(id) {
  let job;
  try {
    job = await apiJson(jobPath(id));
  } catch (err) {
    if (state.jobId !== id) return;
    if (err.status === 404) {
      $("job-title").textContent = "No such job";
      $("job-meta").textContent = err.message;
      showError(err);
      return;
    }
    showError(err, "Could not read the job");
    poll(() => refreshJob(id), retryDelay(err, POLL_IDLE_MS));
    return;
  }
  if (state.jobId !== id) return;
  state.job = job;
  state.names = { ...job.speaker_names };
  renderHeader(job);
  if (!$("player-box").hidden || state.audioTried === 0) loadAudio(job);
  const work = [];
  if (has(job, "transcript") && !state.transcriptLoaded) work.push(loadTranscript(job));
  if (has(job, "notes") && !state.notesLoaded) work.push(loadNotes(job));
  await Promise.all(work);
  renderDownloads(job);
  if (!FINAL_STATES.includes(job.state)) poll(() => refreshJob(id), POLL_ACTIVE_MS);
}

// A result is there once its JSON is (every other format is rendered from it).
function has(job, kind) {
  return job.outputs.includes(`${kind}.json`);
}

function renderHeader(job) {
  $("job-title").textContent = fileName(job);
  const bits = [`submitted ${when(job.created_at)}`];
  if (job.source.duration_s) bits.push(`${clock(job.source.duration_s)} long`);
  if (job.transcription) {
    bits.push(`${job.transcription.model}, ${job.transcription.language}`);
  }
  bits.push(`notes: ${job.options.notes_template}`);
  $("job-meta").textContent = bits.join(" · ");
  $("job-state").textContent = job.state;
  $("job-state").className = `state state-${job.state.toLowerCase()}`;
  $("job-progress").value = job.progress;
  $("job-progress").hidden = FINAL_STATES.includes(job.state);
  const box = $("job-error");
  box.hidden = !job.error;
  if (job.error) {
    const verb = job.state === "CANCELLED" ? "This job was cancelled" : "This job failed";
    $("job-error-message").textContent = `${verb}: ${job.error.message}`;
    $("job-error-code").textContent = job.error.code;
  }
}

async function loadAudio(job) {
  state.audioTried += 1;
  try {
    const audio = await apiJson(job.links.audio);
    if (state.jobId !== job.job_id) return;
    const player = $("player");
    if (player.src !== audio.url) {
      const at = player.currentTime;
      player.src = audio.url;
      if (at) player.currentTime = at;
    }
    $("player-note").textContent = audio.expires_at
      ? `The player's link works until ${when(audio.expires_at)}; reload the job for a new one.`
      : "";
    $("player-box").hidden = false;
  } catch (err) {
    if (state.jobId !== job.job_id) return;
    $("player-box").hidden = false;
    $("player-note").textContent = `No audio to play: ${err.message}`;
  }
}

function speakerName(label) {
  return (label && state.names[label]) || label;
}

function turnsOf(transcript) {
  const turns = [];
  for (const segment of transcript.segments) {
    const last = turns[turns.length - 1];
    if (last && last.speaker === (segment.speaker || null)) last.segments.push(segment);
    else turns.push({ speaker: segment.speaker || null, segments: [segment] });
  }
  return turns;
}

// A result's JSON, or null when it could not be read (the error is shown) or the page has
// moved to another job meanwhile.
async function result(job, kind) {
  try {
    const doc = await apiJson(`${job.links[kind]}?format=json`);
    return state.jobId === job.job_id ? doc : null;
  } catch (err) {
    showError(err, `Could not read the ${kind}`);
    return null;
  }
}

async function loadTranscript(job) {
  const transcript = await result(job, "transcript");
  if (!transcript) return;
  state.transcriptLoaded = true;
  state.names = { ...transcript.speaker_names, ...job.speaker_names };
  state.words = [];
  state.wordEls = [];
  const box = $("transcript");
  box.replaceChildren();
  for (const turn of turnsOf(transcript)) {
    const start = turn.segments[0].start;
    const text = el("p", { class: "words" });
    for (const segment of turn.segments) {
      const words = segment.words.length
        ? segment.words
        : [{ start: segment.start, end: segment.end, word: ` ${segment.text.trim()}` }];
      for (const word of words) {
        const span = el("span", { class: "w", "data-i": String(state.words.length) });
        span.textContent = word.word;
        if (word.probability != null && word.probability < LOW_CONFIDENCE) {
          span.classList.add("low");
          span.title = `low confidence (${Math.round(word.probability * 100)}%)`;
        }
        state.words.push(word);
        state.wordEls.push(span);
        text.append(span);
      }
    }
    const seek = el("button", {
      type: "button",
      class: "ts",
      "data-start": String(start),
      "aria-label": `Play from ${clock(start)}`,
      text: clock(start),
    });
    const who = turn.speaker
      ? el("span", { class: "speaker", "data-speaker": turn.speaker, text: speakerName(turn.speaker) })
      : null;
    box.append(el("div", { class: "turn" }, el("div", { class: "turn-head" }, seek, who), text));
  }
  if (!state.words.length) box.append(el("p", { class: "hint", text: "No words were heard." }));
  $("transcript-box").hidden = false;
  renderSpeakers(job, transcript);
}

function renderSpeakers(job, transcript) {
  const talk = job.transcription?.speakers || [];
  // In the order they are first heard (the labels' numbers), not by talk time.
  const labels = [...new Set([...talk.map((t) => t.speaker), ...(transcript.turns || []).map((t) => t.speaker)])]
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const fields = $("speakers-fields");
  fields.replaceChildren();
  $("speakers-box").hidden = labels.length === 0;
  for (const label of labels) {
    const info = talk.find((t) => t.speaker === label);
    const id = `name-${label}`;
    const detail = info ? ` · ${clock(info.talk_s)}, ${Math.round(info.share * 100)}%` : "";
    const input = el("input", {
      id,
      type: "text",
      "data-speaker": label,
      maxlength: "80",
      autocomplete: "off",
      placeholder: label,
    });
    input.value = state.names[label] || "";
    fields.append(
      el("div", { class: "field" }, el("label", { for: id, text: `Name for ${label}${detail}` }), input),
    );
  }
}

async function saveNames(event) {
  event.preventDefault();
  clearError();
  const id = state.jobId;
  const body = {};
  for (const input of $("speakers-fields").querySelectorAll("input")) {
    body[input.dataset.speaker] = input.value.trim() || null;
  }
  try {
    const named = await apiJson(jobPath(id, "/speakers"), { method: "PUT", body });
    if (state.jobId !== id) return;
    state.names = { ...named.speaker_names };
    for (const span of $("transcript").querySelectorAll(".speaker")) {
      span.textContent = speakerName(span.dataset.speaker);
    }
    if (state.notesLoaded) await loadNotes(state.job);
    say("Speaker names saved");
  } catch (err) {
    showError(err, "The names were not saved");
  }
}

function listSection(title, items, render) {
  if (!items.length) return null;
  return el("section", { class: "notes-part" }, el("h3", { text: title }),
    el("ul", {}, ...items.map((item) => el("li", {}, ...render(item)))));
}

async function loadNotes(job) {
  const doc = await result(job, "notes");
  if (!doc) return;
  state.notesLoaded = true;
  const n = doc.notes;
  const raised = (r) => (r.raised_by ? [el("span", { class: "hint", text: ` (${speakerName(r.raised_by)})` })] : []);
  const parts = [
    el("h3", { class: "notes-title", text: n.title }),
    el("p", { text: n.summary }),
    listSection("Action items", n.action_items, (a) => {
      const facts = [];
      if (a.owner) facts.push(`owner: ${speakerName(a.owner)}`);
      if (a.due) facts.push(`due: ${a.due}`);
      if (a.raised_by && a.raised_by !== a.owner) facts.push(`raised by: ${speakerName(a.raised_by)}`);
      return [el("span", { class: "task", text: a.task }),
        facts.length ? el("span", { class: "facts", text: facts.join("; ") }) : null];
    }),
    listSection("Decisions", n.decisions, (d) => [d.text, ...raised(d)]),
    listSection("Open questions", n.open_questions, (q) => [q.text, ...raised(q)]),
    listSection("Key points", n.key_points, (k) => [k]),
  ];
  if (!n.action_items.length) {
    parts.splice(2, 0, el("p", { class: "hint", text: "No action items." }));
  }
  $("notes").replaceChildren(...parts.filter(Boolean));
  $("notes-box").hidden = false;
}

function renderDownloads(job) {
  const box = $("downloads");
  box.replaceChildren();
  const kinds = [
    ["transcript", queryEnum("/v1/jobs/{job_id}/transcript", "format")],
    ["notes", queryEnum("/v1/jobs/{job_id}/notes", "format")],
  ];
  for (const [kind, formats] of kinds) {
    if (!has(job, kind)) continue;
    for (const format of formats) {
      box.append(el("button", {
        type: "button",
        class: "download",
        "data-kind": kind,
        "data-format": format,
        text: `${kind}.${format}`,
      }));
    }
  }
  $("downloads-box").hidden = box.children.length === 0;
}

async function download(kind, format) {
  const id = state.jobId;
  try {
    const response = await api(`${state.job.links[kind]}?format=${encodeURIComponent(format)}`);
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: `${fileName(state.job)}.${kind}.${format}` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    say(`Downloaded ${kind}.${format}`);
  } catch (err) {
    showError(err, `Could not download ${kind}.${format}`);
  }
}

async function deleteJob() {
  const id = state.jobId;
  try {
    const done = await apiJson(jobPath(id), { method: "DELETE" });
    say(`Deleted: ${done.deleted_objects} files removed`);
    location.hash = "#/";
  } catch (err) {
    showError(err, "The job was not deleted");
  }
}

// --- playing -------------------------------------------------------------------------------

function seek(seconds) {
  const player = $("player");
  if (!player.src) return;
  player.currentTime = seconds;
  player.play().catch(() => {}); // a browser may refuse to start sound; the seek stands
  mark(seconds);
}

// The word being said at ``t``: the last that started by then, while it lasts (or until the
// next one starts, so pauses keep the mark).
function wordAt(t) {
  const words = state.words;
  let lo = 0;
  let hi = words.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (words[mid].start <= t + 0.01) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  if (found < 0) return -1;
  return t <= words[found].end + 1.0 ? found : -1;
}

function mark(t) {
  const i = wordAt(t);
  if (i === state.current) return;
  const old = state.wordEls[state.current];
  if (old) {
    old.classList.remove("current");
    old.removeAttribute("aria-current");
  }
  state.current = i;
  const now = state.wordEls[i];
  if (now) {
    now.classList.add("current");
    now.setAttribute("aria-current", "true");
    if (!$("player").paused) now.scrollIntoView({ block: "nearest" });
  }
}

function wirePlayer() {
  const player = $("player");
  let frame = 0;
  const follow = () => {
    mark(player.currentTime);
    if (!player.paused) frame = requestAnimationFrame(follow);
  };
  player.addEventListener("play", () => {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(follow);
  });
  player.addEventListener("seeked", () => mark(player.currentTime));
  player.addEventListener("timeupdate", () => mark(player.currentTime));
  player.addEventListener("error", () => {
    // A signed link that lapsed: ask for a new one, once.
    if (state.job && player.getAttribute("src") && state.audioTried < 3) loadAudio(state.job);
  });
  $("transcript").addEventListener("click", (event) => {
    const word = event.target.closest(".w");
    const stamp = event.target.closest(".ts");
    if (word) seek(state.words[Number(word.dataset.i)].start);
    else if (stamp) seek(Number(stamp.dataset.start));
  });
}

// --- start ---------------------------------------------------------------------------------

async function start() {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut());
  $("alert-close").addEventListener("click", clearError);
  $("submit-form").addEventListener("submit", submit);
  $("more").addEventListener("click", () => loadJobs(true));
  $("speakers-form").addEventListener("submit", saveNames);
  $("downloads").addEventListener("click", (event) => {
    const button = event.target.closest(".download");
    if (button) download(button.dataset.kind, button.dataset.format);
  });
  $("delete-job").addEventListener("click", () => {
    $("delete-job").hidden = true;
    $("delete-confirm").hidden = false;
    $("delete-no").focus();
  });
  $("delete-no").addEventListener("click", () => {
    $("delete-confirm").hidden = true;
    $("delete-job").hidden = false;
    $("delete-job").focus();
  });
  $("delete-yes").addEventListener("click", deleteJob);
  wireDrop();
  wirePlayer();
  window.addEventListener("hashchange", () => {
    clearError();
    route();
  });
  try {
    const response = await fetch("/openapi.json", { cache: "no-cache" });
    state.doc = await response.json();
  } catch (err) {
    showError(err, "The API's document could not be read");
    return;
  }
  route();
  document.body.dataset.ready = "true"; // for tests and tools: the page is wired
}

start();

//! Text to IPA phonemes with espeak-ng, clause by clause, the way Piper phonemises: each clause's
//! phonemes, then the punctuation that ended it (`,` `:` `;` followed by a space), clauses grouped
//! into sentences at `.` `!` `?`, language-switch flags such as `(fr)` removed.
//!
//! A hand-written `extern "C"` block for the three functions needed, rather than a -sys crate: the
//! ones on crates.io either build espeak-ng from source (cmake and autotools at build time) or need
//! libclang for bindgen, where Debian's `libespeak-ng-dev` already provides the library.
//!
//! espeak-ng keeps global state (one data path, one current voice, static buffers) and is not
//! thread-safe: every call goes through one process-wide lock.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::TtsError;

#[link(name = "espeak-ng")]
extern "C" {
    fn espeak_Initialize(output: c_int, buflength: c_int, path: *const c_char, options: c_int) -> c_int;
    fn espeak_SetVoiceByName(name: *const c_char) -> c_int;
    fn espeak_TextToPhonemes(textptr: *mut *const c_void, textmode: c_int, phonememode: c_int) -> *const c_char;
}

// speak_lib.h: AUDIO_OUTPUT_SYNCHRONOUS (no audio device), espeakINITIALIZE_DONT_EXIT (return an
// error instead of calling exit()), espeakCHARS_UTF8, espeakPHONEMES_IPA.
const AUDIO_OUTPUT_SYNCHRONOUS: c_int = 2;
const INITIALIZE_DONT_EXIT: c_int = 0x8000;
const CHARS_UTF8: c_int = 1;
const PHONEMES_IPA: c_int = 0x02;

/// Punctuation kept as a phoneme after its clause (Piper's voices have ids for it).
const TERMINATORS: [char; 6] = ['.', ',', ';', ':', '!', '?'];

struct State {
    data_dir: PathBuf,
    voice: Option<String>,
}

static ESPEAK: Mutex<Option<State>> = Mutex::new(None);

/// Where espeak-ng's data usually is: Debian's multiarch path first.
pub fn default_data_dir() -> PathBuf {
    let candidates = [
        format!("/usr/lib/{}-linux-gnu/espeak-ng-data", std::env::consts::ARCH),
        "/usr/share/espeak-ng-data".to_string(),
        "/usr/local/share/espeak-ng-data".to_string(),
        "/usr/lib/espeak-ng-data".to_string(),
    ];
    let found = candidates.iter().map(PathBuf::from).find(|p| is_data_dir(p));
    found.unwrap_or_else(|| PathBuf::from(&candidates[0]))
}

fn is_data_dir(dir: &Path) -> bool {
    dir.join("phontab").is_file() && dir.join("phondata").is_file()
}

/// Phonemes of one sentence, one `char` per phoneme (NFD-decomposed), punctuation included.
pub type Sentence = Vec<char>;

/// Text to sentences of IPA phonemes with the espeak-ng voice `voice` (e.g. `en-us`).
pub fn phonemize(data_dir: &Path, voice: &str, text: &str) -> Result<Vec<Sentence>, TtsError> {
    let mut guard = ESPEAK.lock().unwrap_or_else(|p| p.into_inner());
    let state = initialise(&mut guard, data_dir)?;
    if state.voice.as_deref() != Some(voice) {
        let name = CString::new(voice)
            .map_err(|_| TtsError::EspeakVoice { voice: voice.to_string(), data_dir: state.data_dir.clone() })?;
        // SAFETY: a valid NUL-terminated string; espeak is initialised and we hold its lock.
        if unsafe { espeak_SetVoiceByName(name.as_ptr()) } != 0 {
            state.voice = None;
            return Err(TtsError::EspeakVoice { voice: voice.to_string(), data_dir: state.data_dir.clone() });
        }
        state.voice = Some(voice.to_string());
    }
    let clauses = clauses(text);
    Ok(sentences(clauses))
}

fn initialise<'a>(slot: &'a mut Option<State>, data_dir: &Path) -> Result<&'a mut State, TtsError> {
    if let Some(state) = slot {
        if state.data_dir != data_dir {
            return Err(TtsError::EspeakDataMismatch { loaded: state.data_dir.clone(), requested: data_dir.into() });
        }
        return Ok(slot.as_mut().expect("checked"));
    }
    // espeak-ng silently falls back to its compiled-in path when the given one is wrong: check first.
    if !is_data_dir(data_dir) {
        let reason = if data_dir.is_dir() {
            "no phontab/phondata inside: not an espeak-ng data directory"
        } else {
            "no such directory (Debian: apt-get install espeak-ng-data)"
        };
        return Err(TtsError::EspeakData { path: data_dir.into(), reason: reason.into() });
    }
    let c_path = CString::new(data_dir.as_os_str().as_encoded_bytes())
        .map_err(|_| TtsError::EspeakData { path: data_dir.into(), reason: "path contains a NUL byte".into() })?;
    // SAFETY: a valid path string; called once, under the lock.
    let rate = unsafe { espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, c_path.as_ptr(), INITIALIZE_DONT_EXIT) };
    if rate <= 0 {
        return Err(TtsError::EspeakData {
            path: data_dir.into(),
            reason: format!("espeak_Initialize returned {rate}"),
        });
    }
    tracing::debug!(data_dir = %data_dir.display(), "espeak-ng initialised");
    Ok(slot.insert(State { data_dir: data_dir.into(), voice: None }))
}

/// One clause as espeak-ng cut it.
#[derive(Debug, PartialEq)]
struct Clause {
    phonemes: String,
    terminator: Option<char>,
}

/// Runs espeak-ng over `text` clause by clause. The caller holds the lock with a voice set.
fn clauses(text: &str) -> Vec<Clause> {
    let bytes: Vec<u8> = text.bytes().filter(|&b| b != 0).collect();
    let c_text = CString::new(bytes).expect("NUL bytes removed");
    let start = c_text.as_ptr() as usize;
    let len = c_text.as_bytes().len();
    let mut ptr = c_text.as_ptr() as *const c_void;
    let mut out = Vec::new();
    while !ptr.is_null() {
        let before = ptr as usize - start;
        // SAFETY: `ptr` points into `c_text` (NUL-terminated, alive); espeak advances it or sets it
        // to NULL at the end, and returns a string in its static buffer, copied before the next call.
        let phonemes = unsafe {
            let p = espeak_TextToPhonemes(&mut ptr, CHARS_UTF8, PHONEMES_IPA);
            if p.is_null() {
                String::new()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        let after = if ptr.is_null() { len } else { ptr as usize - start };
        let consumed = String::from_utf8_lossy(&c_text.as_bytes()[before.min(after)..after]);
        out.push(Clause {
            phonemes: strip_language_flags(&phonemes),
            terminator: terminator(&consumed, ptr.is_null()),
        });
        if after <= before && !ptr.is_null() {
            tracing::warn!(offset = before, "espeak-ng did not advance; stopping");
            break;
        }
    }
    out
}

/// The punctuation that ended a clause. espeak-ng has already read the first character of the
/// next clause when it returns, so that character is dropped unless the text ended.
fn terminator(consumed: &str, at_end: bool) -> Option<char> {
    let mut s = consumed;
    if !at_end {
        let mut chars = s.chars();
        chars.next_back();
        s = chars.as_str();
    }
    s.trim_end().chars().next_back().filter(|c| TERMINATORS.contains(c))
}

/// Removes espeak-ng's language-switch markers, e.g. `(fr)` around a French word.
fn strip_language_flags(phonemes: &str) -> String {
    let mut out = String::with_capacity(phonemes.len());
    let mut depth = 0;
    for c in phonemes.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Clauses joined into sentences as Piper does; phonemes decomposed (NFD), one char each.
fn sentences(clauses: Vec<Clause>) -> Vec<Sentence> {
    use unicode_normalization::UnicodeNormalization;
    let mut out = Vec::new();
    let mut current = String::new();
    let n = clauses.len();
    for (i, c) in clauses.into_iter().enumerate() {
        current.push_str(c.phonemes.trim());
        let last = i + 1 == n;
        match c.terminator {
            Some(t @ ('.' | '!' | '?')) => {
                current.push(t);
                flush(&mut current, &mut out);
            }
            Some(t) => {
                current.push(t);
                current.push(' ');
            }
            None if last => flush(&mut current, &mut out),
            None => current.push(' '),
        }
    }
    flush(&mut current, &mut out);
    fn flush(current: &mut String, out: &mut Vec<Sentence>) {
        let s = std::mem::take(current);
        let s = s.trim();
        // A sentence of punctuation only ("..." after a sentence) has nothing to say.
        if s.chars().any(|c| !TERMINATORS.contains(&c) && !c.is_whitespace()) {
            out.push(s.nfd().collect());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminator_skips_the_character_espeak_read_ahead() {
        assert_eq!(terminator("Setting the left side, o", false), Some(','));
        assert_eq!(terminator("es...  f", false), Some('.'));
        assert_eq!(terminator("ay yes or no.", true), Some('.'));
        assert_eq!(terminator("Hello world", true), None);
        assert_eq!(terminator("21.5 degrees n", false), None);
    }

    #[test]
    fn language_flags_are_removed() {
        assert_eq!(strip_language_flags("ðə (fr)kafe(en) ɪz"), "ðə kafe ɪz");
    }

    #[test]
    fn clauses_group_into_sentences_with_punctuation_kept() {
        let c = |p: &str, t: Option<char>| Clause { phonemes: p.into(), terminator: t };
        let got =
            sentences(vec![c("həlˈoʊ", Some(',')), c("wˈɜːld", Some('.')), c("stˈɑːp", Some('?')), c("jˈɛs", None)]);
        let s: Vec<String> = got.iter().map(|x| x.iter().collect()).collect();
        assert_eq!(s, ["həlˈoʊ, wˈɜːld.", "stˈɑːp?", "jˈɛs"]);
    }
}

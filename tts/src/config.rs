//! A Piper voice's `.onnx.json`: sample rate, espeak-ng voice, inference scales and the phoneme →
//! id map; and the id sequence Piper feeds its model.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::TtsError;

/// Begin, end and pad symbols of Piper's phoneme id map.
const BOS: char = '^';
const EOS: char = '$';
const PAD: char = '_';

#[derive(Debug, Deserialize)]
struct RawConfig {
    audio: RawAudio,
    espeak: RawEspeak,
    inference: RawInference,
    #[serde(default)]
    phoneme_type: Option<String>,
    phoneme_id_map: HashMap<String, Vec<i64>>,
    #[serde(default)]
    num_speakers: u32,
}

#[derive(Debug, Deserialize)]
struct RawAudio {
    sample_rate: u32,
}

#[derive(Debug, Deserialize)]
struct RawEspeak {
    voice: String,
}

#[derive(Debug, Deserialize)]
struct RawInference {
    noise_scale: f32,
    length_scale: f32,
    noise_w: f32,
}

/// What synthesis needs from the config.
#[derive(Debug, Clone)]
pub struct VoiceConfig {
    pub sample_rate: u32,
    /// espeak-ng voice name, e.g. `en-us`.
    pub espeak_voice: String,
    pub noise_scale: f32,
    pub length_scale: f32,
    pub noise_w: f32,
    pub num_speakers: u32,
    ids: HashMap<char, Vec<i64>>,
}

impl VoiceConfig {
    pub fn load(path: &Path) -> Result<Self, TtsError> {
        let bad = |reason: String| TtsError::Config { path: path.into(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        Self::parse(&text).map_err(bad)
    }

    /// Parses and checks a config; the error names the key.
    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if let Some(t) = raw.phoneme_type.as_deref().filter(|t| *t != "espeak") {
            return Err(format!("phoneme_type: {t:?} is not supported (only \"espeak\")"));
        }
        if !(sotto_audio::MIN_SAMPLE_RATE..=sotto_audio::MAX_SAMPLE_RATE).contains(&raw.audio.sample_rate) {
            return Err(format!("audio.sample_rate: {} Hz is not a usable rate", raw.audio.sample_rate));
        }
        let mut ids = HashMap::new();
        for (key, value) in raw.phoneme_id_map {
            let mut chars = key.chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                return Err(format!("phoneme_id_map.{key:?}: a key must be one character"));
            };
            if value.is_empty() {
                return Err(format!("phoneme_id_map.{key:?}: no id"));
            }
            ids.insert(c, value);
        }
        for c in [BOS, EOS, PAD] {
            if !ids.contains_key(&c) {
                return Err(format!("phoneme_id_map: no id for {c:?} (Piper's begin, end and pad symbols)"));
            }
        }
        Ok(VoiceConfig {
            sample_rate: raw.audio.sample_rate,
            espeak_voice: raw.espeak.voice,
            noise_scale: raw.inference.noise_scale,
            length_scale: raw.inference.length_scale,
            noise_w: raw.inference.noise_w,
            num_speakers: raw.num_speakers,
            ids,
        })
    }

    /// Piper's model input: BOS, pad, then each phoneme's id followed by pad, then EOS. Phonemes
    /// the voice has no id for are skipped (logged once per call).
    pub fn phoneme_ids(&self, phonemes: &[char]) -> Vec<i64> {
        let mut out = Vec::with_capacity(phonemes.len() * 2 + 3);
        out.extend(&self.ids[&BOS]);
        out.extend(&self.ids[&PAD]);
        let mut missing = Vec::new();
        for p in phonemes {
            match self.ids.get(p) {
                Some(id) => {
                    out.extend(id);
                    out.extend(&self.ids[&PAD]);
                }
                None => missing.push(*p),
            }
        }
        out.extend(&self.ids[&EOS]);
        if !missing.is_empty() {
            tracing::debug!(?missing, "phonemes without an id in this voice skipped");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{"audio": {"sample_rate": 22050}, "espeak": {"voice": "en-us"},
        "inference": {"noise_scale": 0.667, "length_scale": 1, "noise_w": 0.8},
        "phoneme_type": "espeak", "num_speakers": 1,
        "phoneme_id_map": {"_": [0], "^": [1], "$": [2], " ": [3], "a": [14], "b": [15], ".": [10]}}"#;

    #[test]
    fn ids_interleave_pad_between_bos_phonemes_and_eos() {
        let c = VoiceConfig::parse(CONFIG).unwrap();
        assert_eq!(c.phoneme_ids(&['a', ' ', 'b', '.']), [1, 0, 14, 0, 3, 0, 15, 0, 10, 0, 2]);
        // Unknown phonemes are skipped, not mapped to something else.
        assert_eq!(c.phoneme_ids(&['a', 'ʘ']), [1, 0, 14, 0, 2]);
        assert_eq!((c.sample_rate, c.espeak_voice.as_str(), c.noise_w), (22050, "en-us", 0.8));
    }

    #[test]
    fn bad_configs_name_the_key() {
        let no_pad = CONFIG.replace(r#""_": [0], "#, "");
        assert!(VoiceConfig::parse(&no_pad).unwrap_err().contains("'_'"));
        let long_key = CONFIG.replace(r#""a": [14]"#, r#""ab": [14]"#);
        assert!(VoiceConfig::parse(&long_key).unwrap_err().contains("phoneme_id_map.\"ab\""));
        let other = CONFIG.replace(r#""phoneme_type": "espeak""#, r#""phoneme_type": "text""#);
        assert!(VoiceConfig::parse(&other).unwrap_err().contains("phoneme_type"));
        assert!(VoiceConfig::parse("{}").unwrap_err().contains("audio"));
    }
}
